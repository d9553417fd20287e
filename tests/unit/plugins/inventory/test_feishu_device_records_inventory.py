"""The feishu_device_records inventory plugin against the Feishu sandbox."""

import os

import pytest

from ansible.errors import AnsibleError, AnsibleParserError
from ansible.plugins.loader import inventory_loader

LIST = r"/device_records$"
STATUS_NAMES = {0: "unknown", 1: "trusted", 2: "untrusted"}
# What every host has, whatever its inventory source.
MAGIC_VARS = {"inventory_file", "inventory_dir", "inventory_hostname", "inventory_hostname_short", "group_names"}


def test_every_record_is_a_host_with_its_fields_as_prefixed_vars(feishu_sandbox, feishu_source):
    parsed = feishu_source()
    records = feishu_sandbox.records.values()
    assert parsed.hosts == sorted(r["device_name"] for r in records)
    assert parsed.group("feishu_devices") == parsed.hosts
    record = feishu_sandbox.records["7400000000000000001"]
    host_vars = parsed.vars(record["device_name"])
    assert host_vars["feishu_device_record_id"] == "7400000000000000001"
    assert host_vars["feishu_serial_number"] == record["serial_number"]
    assert host_vars["feishu_version"] == record["version"]
    assert host_vars["feishu_dids"] == record["dids"]
    assert set(name for name in host_vars if not name.startswith("feishu_")) <= MAGIC_VARS


def test_enum_fields_hold_names_and_omitted_fields_are_filled_in(feishu_sandbox, feishu_source):
    feishu_sandbox.add_record(device_name="BARE-0001", device_system=2)
    host_vars = feishu_source().vars("BARE-0001")
    # The API leaves zeros and false out; the host gets them by name anyway.
    assert host_vars["feishu_device_status"] == "unknown"
    assert host_vars["feishu_device_ownership"] == "unknown"
    assert host_vars["feishu_device_terminal_type"] == "unknown"
    assert host_vars["feishu_device_system"] == "macos"
    assert host_vars["feishu_is_managed"] is False


def test_enum_names_match_the_records_ints(feishu_sandbox, feishu_source):
    parsed = feishu_source()
    for record in feishu_sandbox.records.values():
        assert parsed.vars(record["device_name"])["feishu_device_status"] == STATUS_NAMES[record.get("device_status", 0)]


def test_filters_take_enum_names_and_reach_the_list_endpoint(feishu_sandbox, feishu_source):
    parsed = feishu_source(dict(filters=dict(device_status="untrusted", device_terminal_type="desktop")))
    expected = sorted(r["device_name"] for r in feishu_sandbox.records.values()
                      if r.get("device_status") == 2 and r.get("device_terminal_type") == 2)
    assert expected and parsed.hosts == expected
    (call,) = feishu_sandbox.wire.entries(path_regex=LIST)
    assert call["query"]["device_status"] == "2" and call["query"]["device_terminal_type"] == "2"
    assert call["query"]["page_size"] == "100"


def test_a_bad_filter_fails_before_any_request(feishu_sandbox, feishu_source):
    with pytest.raises(AnsibleParserError) as caught:
        feishu_source(dict(filters=dict(device_status="suspicious")))
    assert "device_status" in str(caught.value)
    assert len(feishu_sandbox.wire) == 0


def test_unsafe_and_shared_names_become_safe_unique_hosts(feishu_sandbox, feishu_source):
    first = feishu_sandbox.add_record(device_name="Bob's MacBook", device_system=2)
    second = feishu_sandbox.add_record(device_name="Bob's MacBook", device_system=2)
    nameless = feishu_sandbox.add_record(serial_number="C02NONAME", device_system=2)
    hosts = feishu_source().hosts
    assert "Bob_s_MacBook_%s" % first["device_record_id"] in hosts
    assert "Bob_s_MacBook_%s" % second["device_record_id"] in hosts
    assert "Bob_s_MacBook" not in hosts
    assert nameless["device_record_id"] in hosts


def test_a_record_named_like_another_records_fallback_is_not_lost(feishu_sandbox, feishu_source):
    first = feishu_sandbox.add_record(device_name="SHARED-NAME", device_system=2)
    feishu_sandbox.add_record(device_name="SHARED-NAME", device_system=2)
    third = feishu_sandbox.add_record(device_name="SHARED-NAME_%s" % first["device_record_id"], device_system=2)
    parsed = feishu_source()
    assert len(parsed.hosts) == len(feishu_sandbox.records)
    # The fallback stays the first record's: the record named like it yields and gets its own.
    first_host = "SHARED-NAME_%s" % first["device_record_id"]
    assert parsed.vars(first_host)["feishu_device_record_id"] == first["device_record_id"]
    third_host = "%s_%s" % (first_host, third["device_record_id"])
    assert parsed.vars(third_host)["feishu_device_record_id"] == third["device_record_id"]


def test_hosts_can_be_named_by_serial_number(feishu_sandbox, feishu_source):
    parsed = feishu_source(dict(hostname="serial_number"))
    for record in feishu_sandbox.records.values():
        # Mobile records have no serial number: they are named by their id.
        assert (record.get("serial_number") or record["device_record_id"]) in parsed.hosts


def test_constructed_groups_keyed_groups_and_composed_vars(feishu_sandbox, feishu_source):
    parsed = feishu_source(dict(
        keyed_groups=[dict(key="feishu_device_status", prefix="feishu_status"),
                      dict(key="feishu_device_system", prefix="os")],
        groups=dict(company_untrusted="feishu_device_ownership == 'company' and feishu_device_status == 'untrusted'"),
        compose=dict(ansible_connection="'local'", record_label="feishu_device_name ~ '/' ~ feishu_serial_number"),
    ))
    records = list(feishu_sandbox.records.values())
    assert parsed.group("feishu_status_untrusted") == sorted(
        r["device_name"] for r in records if r.get("device_status") == 2)
    assert parsed.group("os_windows") == sorted(r["device_name"] for r in records if r["device_system"] == 1)
    assert parsed.group("company_untrusted") == sorted(
        r["device_name"] for r in records if r.get("device_status") == 2 and r.get("device_ownership") == 2)
    host_vars = parsed.vars(feishu_sandbox.records["7400000000000000001"]["device_name"])
    assert host_vars["ansible_connection"] == "local"
    assert host_vars["record_label"] == "%s/%s" % (host_vars["feishu_device_name"], host_vars["feishu_serial_number"])


def test_strict_fails_on_a_compose_error(feishu_source):
    with pytest.raises(AnsibleError) as caught:
        feishu_source(dict(strict=True, compose=dict(broken="feishu_no_such_field.upper()")))
    assert "broken" in str(caught.value)


def test_a_cached_run_sends_no_request(feishu_sandbox, feishu_source, jsonfile_cache):
    first = feishu_source(jsonfile_cache)
    seen = len(feishu_sandbox.wire)
    assert seen >= 2  # token and list
    second = feishu_source(jsonfile_cache)
    assert len(feishu_sandbox.wire) == seen
    assert second.hosts == first.hosts
    assert second.vars(first.hosts[0]) == first.vars(first.hosts[0])


def test_the_cache_holds_no_secret_and_no_token(feishu_sandbox, feishu_source, jsonfile_cache):
    feishu_source(jsonfile_cache)
    cache_dir = jsonfile_cache["cache_connection"]
    contents = "".join(open(os.path.join(cache_dir, name)).read() for name in os.listdir(cache_dir))
    assert "7400000000000000001" in contents
    for secret in [feishu_sandbox.app_secret] + feishu_sandbox.issued_tokens():
        assert secret not in contents


def test_changed_filters_or_a_flush_read_the_api_again(feishu_sandbox, feishu_source, jsonfile_cache):
    feishu_source(jsonfile_cache)
    lists = len(feishu_sandbox.wire.entries(path_regex=LIST))
    untrusted = feishu_source(dict(jsonfile_cache, filters=dict(device_status="untrusted")))
    assert len(feishu_sandbox.wire.entries(path_regex=LIST)) == lists + 1
    assert len(untrusted.hosts) < len(feishu_sandbox.records)
    feishu_source(dict(jsonfile_cache, filters=dict(device_status="untrusted")), cache=False)  # --flush-cache
    assert len(feishu_sandbox.wire.entries(path_regex=LIST)) == lists + 2


def test_an_api_error_names_the_request_not_the_secret(feishu_sandbox, feishu_source):
    with pytest.raises(AnsibleParserError) as caught:
        feishu_source(dict(app_secret="not-the-secret-42"))
    assert "app secret invalid" in str(caught.value) and "tenant_access_token" in str(caught.value)
    assert "not-the-secret-42" not in str(caught.value)


def test_missing_credentials_name_every_way_to_supply_them(feishu_sandbox, feishu_source):
    with pytest.raises(AnsibleParserError) as caught:
        feishu_source(dict(app_id=None, app_secret=None))
    assert "FEISHU_APP_SECRET" in str(caught.value)
    assert len(feishu_sandbox.wire) == 0


def test_credentials_come_from_the_environment(monkeypatch, feishu_sandbox, feishu_source):
    monkeypatch.setenv("FEISHU_APP_ID", feishu_sandbox.app_id)
    monkeypatch.setenv("FEISHU_APP_SECRET", feishu_sandbox.app_secret)
    assert len(feishu_source(dict(app_id=None, app_secret=None)).hosts) == len(feishu_sandbox.records)


@pytest.mark.parametrize("file_name, accepted", [
    ("feishu_device_records.yml", True),
    ("feishu_device_records.yaml", True),
    ("office.feishu_device_records.yml", True),
    ("office.feishu_device_records.yaml", True),
    ("officefeishu_device_records.yml", False),
    ("office.msgraph_devices.yml", False),
    ("hosts.yml", False),
])
def test_verify_file_accepts_only_this_plugins_file_names(tmp_path, file_name, accepted):
    path = tmp_path / file_name
    path.write_text("plugin: fleetguard.devices.feishu_device_records\n")
    assert inventory_loader.get("fleetguard.devices.feishu_device_records").verify_file(str(path)) is accepted


def test_the_examples_use_only_documented_options(documented_examples):
    sources, options = documented_examples("fleetguard.devices.feishu_device_records")
    assert len(sources) == 2
    for source in sources:
        assert source["plugin"] == "fleetguard.devices.feishu_device_records"
        assert set(source) <= options, set(source) - options


def test_the_first_example_works_as_written(documented_examples, feishu_source):
    example = documented_examples("fleetguard.devices.feishu_device_records")[0][0]
    parsed = feishu_source(dict((key, value) for key, value in example.items() if not key.startswith("cache")))
    for group in ["feishu_status_trusted", "feishu_os_windows", "company_untrusted"]:
        assert parsed.group(group), group
    assert parsed.vars(parsed.hosts[0])["ansible_connection"] == "local"
