"""The msgraph_devices inventory plugin against the Graph sandbox."""

import os

import pytest

from ansible.errors import AnsibleParserError
from ansible.plugins.loader import inventory_loader

from ansible_collections.fleetguard.devices.plugins.inventory.msgraph_devices import snake_case

DEVICES = r"/v1\.0/devices$"


def devices_read(graph_sandbox):
    return graph_sandbox.wire.entries(method="GET", path_regex=DEVICES)


def test_every_device_is_a_host_with_snake_case_prefixed_vars(graph_sandbox, graph_source):
    parsed = graph_source()
    assert len(parsed.hosts) == len(graph_sandbox.devices)
    assert parsed.group("msgraph_devices") == parsed.hosts
    assert sorted(parsed.vars(host)["msgraph_id"] for host in parsed.hosts) == sorted(graph_sandbox.devices)
    device = graph_sandbox.devices[parsed.vars("FG-WS-0001")["msgraph_id"]]
    host_vars = parsed.vars("FG-WS-0001")
    assert host_vars["msgraph_device_id"] == device["deviceId"]
    assert host_vars["msgraph_display_name"] == "FG-WS-0001"
    assert host_vars["msgraph_account_enabled"] is device["accountEnabled"]
    assert host_vars["msgraph_approximate_last_sign_in_date_time"] == device["approximateLastSignInDateTime"]
    assert host_vars["msgraph_extension_attributes"] == device["extensionAttributes"]
    assert not [name for name in host_vars if name.startswith("msgraph_@") or "odata" in name]


def test_the_default_select_is_what_the_modules_read(graph_sandbox, graph_source):
    graph_source()
    (call,) = devices_read(graph_sandbox)
    assert call["query"]["$select"].split(",")[:3] == ["id", "deviceId", "displayName"]
    assert "extensionAttributes" in call["query"]["$select"]
    assert call["query"]["$top"] == "999"


def test_a_raw_filter_and_a_select_reach_graph_and_ids_are_always_read(graph_sandbox, graph_source):
    parsed = graph_source(dict(filter="operatingSystem eq 'iOS'", select=["displayName", "operatingSystem"]))
    expected = sorted(oid for oid, d in graph_sandbox.devices.items() if d["operatingSystem"] == "iOS")
    assert expected and sorted(parsed.vars(host)["msgraph_id"] for host in parsed.hosts) == expected
    (call,) = devices_read(graph_sandbox)
    assert call["query"]["$filter"] == "operatingSystem eq 'iOS'"
    assert call["query"]["$select"] == "displayName,operatingSystem,id,deviceId"
    assert "ConsistencyLevel" not in call["headers"]


def test_an_advanced_query_sends_what_graph_requires(graph_sandbox, graph_source):
    with graph_sandbox.lock:
        tagged = sorted(graph_sandbox.devices)[:2]
        for object_id in tagged:
            graph_sandbox.devices[object_id]["extensionAttributes"]["extensionAttribute15"] = "quarantine:INC-1"
    parsed = graph_source(dict(filter="startswith(extensionAttributes/extensionAttribute15, 'quarantine:')",
                               advanced_query=True))
    assert sorted(parsed.vars(host)["msgraph_id"] for host in parsed.hosts) == tagged
    (call,) = devices_read(graph_sandbox)
    assert call["headers"]["ConsistencyLevel"] == "eventual" and call["query"]["$count"] == "true"


def test_graphs_refusal_of_a_filter_fails_the_source(graph_source):
    with pytest.raises(AnsibleParserError) as caught:
        graph_source(dict(filter="extensionAttributes/extensionAttribute15 eq 'x'"))
    assert "Request_UnsupportedQuery" in str(caught.value)


def test_every_page_is_followed(graph_sandbox, graph_source):
    with graph_sandbox.lock:
        for number in range(1000):
            graph_sandbox.devices["00000000-0000-4000-8000-%012d" % number] = dict(
                next(iter(graph_sandbox.devices.values())), id="00000000-0000-4000-8000-%012d" % number,
                deviceId="10000000-0000-4000-8000-%012d" % number, displayName="BULK-%04d" % number)
    parsed = graph_source()
    assert len(parsed.hosts) == len(graph_sandbox.devices)
    first, second = devices_read(graph_sandbox)
    assert "$skiptoken" not in first["query"] and "$skiptoken" in second["query"]


def test_unsafe_shared_and_missing_names_become_safe_unique_hosts(graph_sandbox, graph_source):
    first = graph_sandbox.add_device(displayName="O'Brien's iPad", operatingSystem="iOS")
    second = graph_sandbox.add_device(displayName="O'Brien's iPad", operatingSystem="iOS")
    nameless = graph_sandbox.add_device(displayName=None, operatingSystem="Linux")
    hosts = graph_source().hosts
    assert "O_Brien_s_iPad_%s" % first["id"] in hosts and "O_Brien_s_iPad_%s" % second["id"] in hosts
    assert "O_Brien_s_iPad" not in hosts
    assert nameless["id"] in hosts


def test_hosts_can_be_named_by_object_id(graph_sandbox, graph_source):
    assert graph_source(dict(hostname="id")).hosts == sorted(graph_sandbox.devices)


def test_keyed_groups_and_compose(graph_sandbox, graph_source):
    parsed = graph_source(dict(
        keyed_groups=[dict(key="msgraph_operating_system | lower", prefix="msgraph_os")],
        groups=dict(disabled="not msgraph_account_enabled"),
        compose=dict(ansible_connection="'local'", short_id="msgraph_id[:8]"),
    ))
    ios = [oid for oid, d in graph_sandbox.devices.items() if d["operatingSystem"] == "iOS"]
    assert sorted(parsed.vars(host)["msgraph_id"] for host in parsed.group("msgraph_os_ios")) == sorted(ios)
    disabled = [oid for oid, d in graph_sandbox.devices.items() if not d["accountEnabled"]]
    assert sorted(parsed.vars(host)["msgraph_id"] for host in parsed.group("disabled") or []) == sorted(disabled)
    host_vars = parsed.vars("FG-WS-0001")
    assert host_vars["ansible_connection"] == "local" and host_vars["short_id"] == host_vars["msgraph_id"][:8]


def test_a_cached_run_sends_no_request_and_holds_no_secret(graph_sandbox, graph_source, jsonfile_cache):
    first = graph_source(jsonfile_cache)
    seen = len(graph_sandbox.wire)
    second = graph_source(jsonfile_cache)
    assert len(graph_sandbox.wire) == seen
    assert second.hosts == first.hosts
    cache_dir = jsonfile_cache["cache_connection"]
    contents = "".join(open(os.path.join(cache_dir, name)).read() for name in os.listdir(cache_dir))
    for secret in [graph_sandbox.client_secret] + list(graph_sandbox.issued_tokens()):
        assert secret not in contents


def test_another_filter_misses_the_cache(graph_sandbox, graph_source, jsonfile_cache):
    graph_source(jsonfile_cache)
    graph_source(dict(jsonfile_cache, filter="operatingSystem eq 'iOS'"))
    assert len(devices_read(graph_sandbox)) == 2


def test_missing_credentials_name_every_way_to_supply_them(graph_sandbox, graph_source):
    with pytest.raises(AnsibleParserError) as caught:
        graph_source(dict(client_secret=None))
    assert "AZURE_CLIENT_SECRET" in str(caught.value) and "MSGRAPH_ACCESS_TOKEN" in str(caught.value)
    assert len(graph_sandbox.wire) == 0


def test_the_first_listed_environment_variable_wins(monkeypatch, graph_sandbox, graph_source):
    # AZURE_CLIENT_SECRET before AZURE_SECRET, as the modules' fallbacks have it.
    monkeypatch.setenv("AZURE_CLIENT_SECRET", graph_sandbox.client_secret)
    monkeypatch.setenv("AZURE_SECRET", "a-stale-secret")
    assert len(graph_source(dict(client_secret=None)).hosts) == len(graph_sandbox.devices)


@pytest.mark.parametrize("name, expected", [
    ("id", "id"),
    ("displayName", "display_name"),
    ("approximateLastSignInDateTime", "approximate_last_sign_in_date_time"),
    ("onPremisesSyncEnabled", "on_premises_sync_enabled"),
    ("extensionAttributes", "extension_attributes"),
    ("mdmAppId", "mdm_app_id"),
])
def test_property_names_in_snake_case(name, expected):
    assert snake_case(name) == expected


@pytest.mark.parametrize("file_name, accepted", [
    ("msgraph_devices.yml", True),
    ("tenant.msgraph_devices.yaml", True),
    ("tenantmsgraph_devices.yml", False),
    ("tenant.feishu_device_records.yml", False),
])
def test_verify_file_accepts_only_this_plugins_file_names(tmp_path, file_name, accepted):
    path = tmp_path / file_name
    path.write_text("plugin: fleetguard.devices.msgraph_devices\n")
    assert inventory_loader.get("fleetguard.devices.msgraph_devices").verify_file(str(path)) is accepted


def test_the_examples_use_only_documented_options(documented_examples):
    sources, options = documented_examples("fleetguard.devices.msgraph_devices")
    assert len(sources) == 2
    for source in sources:
        assert source["plugin"] == "fleetguard.devices.msgraph_devices"
        assert set(source) <= options, set(source) - options


def test_the_first_example_works_as_written(documented_examples, graph_source):
    example = documented_examples("fleetguard.devices.msgraph_devices")[0][0]
    parsed = graph_source(dict((key, value) for key, value in example.items() if not key.startswith("cache")))
    for group in ["msgraph_os_windows", "msgraph_compliant_false", "stale"]:
        assert parsed.group(group), group
    assert parsed.vars(parsed.hosts[0])["ansible_connection"] == "local"


def test_unique_host_names_hold_one_host_per_device_whatever_the_order():
    from ansible_collections.fleetguard.devices.plugins.plugin_utils.device_inventory import unique_host_names

    devices = [dict(id="b", name="X"), dict(id="a", name="X"), dict(id="c", name="X_a"), dict(id="d", name="X_a_2"),
               dict(id="e", name=None)]
    for order in (devices, list(reversed(devices))):
        named, warnings = unique_host_names(order, lambda d: d["name"], lambda d: d["id"])
        by_id = dict((device["id"], name) for name, device in named)
        assert len(set(by_id.values())) == len(devices)
        # X_a is the fallback of a: the device named X_a yields it. X_a_2 is no device's fallback.
        assert by_id == {"a": "X_a", "b": "X_b", "c": "X_a_c", "d": "X_a_2", "e": "e"}
        assert len(warnings) == 3 and sum("2 devices are named X" in w for w in warnings) == 2
        assert "device c is named X_a, the fallback name of device a: it is host X_a_c" in warnings
