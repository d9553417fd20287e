"""fleetguard.devices.feishu_device_record, run by real ansible-playbook against the Feishu sandbox."""

import json

import pytest

RECORDS_PATH = "/open-apis/security_and_compliance/v2/device_records"
TASK = "set records"


def puts(sandbox):
    return sandbox.wire.entries(method="PUT")


def applied_puts(sandbox):
    return [entry for entry in puts(sandbox) if entry["status"] == 200 and entry.get("api_code") == 0]


def ids_where(sandbox, count, **fields):
    with sandbox.lock:
        chosen = [rid for rid, rec in sorted(sandbox.records.items())
                  if all(rec.get(k, 0) == v for k, v in fields.items())]
    assert len(chosen) >= count, "the seed has too few records with %s" % fields
    return chosen[:count]


def record_task(selector, **desired):
    args = dict(selector)
    args.update(desired)
    return "- name: %s\n  fleetguard.devices.feishu_device_record: %s\n  register: out\n" % (TASK, json.dumps(args))


def managed(record):
    return {k: record.get(k, 0) for k in ("device_record_id", "device_status", "device_ownership")}


def test_check_then_real_then_rerun_agree_and_check_mode_sends_no_put(feishu, playbook):
    ids = ids_where(feishu, 3, device_status=1)
    tasks = record_task({"device_record_id": ids}, device_status="untrusted")

    check = playbook(tasks, check=True, diff=True)
    assert check.returncode == 0, check.stdout
    assert puts(feishu) == [], "check mode sent a PUT"
    predicted = check.task(TASK)["result"]
    assert predicted["changed"] is True
    assert predicted["changed_records"] == ids

    real = playbook(tasks)
    assert real.returncode == 0, real.stdout
    done = real.task(TASK)["result"]
    assert done["changed"] is True
    assert done["changed_records"] == predicted["changed_records"]
    assert [managed(r) for r in done["device_records"]] == [managed(r) for r in predicted["device_records"]]
    assert len(applied_puts(feishu)) == 3
    for rid in ids:
        assert feishu.records[rid]["device_status"] == 2

    again = playbook(tasks)
    assert again.returncode == 0
    assert again.task(TASK)["result"]["changed"] is False
    assert again.task(TASK)["result"]["changed_records"] == []
    assert len(puts(feishu)) == 3, "the re-run wrote again"


def test_diff_shows_only_managed_fields_by_name(feishu, playbook):
    rid = ids_where(feishu, 1, device_status=1, device_ownership=2)[0]
    name = feishu.records[rid]["device_name"]
    run = playbook(record_task({"device_name": [name]}, device_status="untrusted"), check=True, diff=True)
    result = run.task(TASK)["result"]
    assert result["diff"] == [{
        "before": {"device_status": "trusted"},
        "after": {"device_status": "untrusted"},
        "before_header": "device record %s (%s)" % (rid, name),
        "after_header": "device record %s (%s)" % (rid, name),
    }]
    assert '-    "device_status": "trusted"' in run.stdout
    assert '+    "device_status": "untrusted"' in run.stdout


def test_the_unset_field_keeps_its_value_in_the_put(feishu, playbook):
    rid = ids_where(feishu, 1, device_status=1, device_ownership=1)[0]
    run = playbook(record_task({"device_record_id": rid}, device_status="untrusted"))
    assert run.returncode == 0, run.stdout
    (put,) = puts(feishu)
    assert put["body"] == {"device_ownership": 1, "device_status": 2}
    assert put["query"] == {"version": "0"}
    assert put["headers"]["Content-Type"].startswith("application/json")


def test_fifty_devices_in_one_task_stay_under_the_rate_limit(feishu, playbook):
    with feishu.lock:
        ids = sorted(feishu.records)[:50]
        expected = [rid for rid in ids if feishu.records[rid].get("device_status", 0) != 2]
    run = playbook(record_task({"device_record_id": ids}, device_status="untrusted"))
    assert run.returncode == 0, run.stdout
    result = run.task(TASK)["result"]
    assert result["changed_records"] == expected
    assert [r["device_record_id"] for r in result["device_records"]] == ids
    assert all(r["device_status"] == 2 for r in result["device_records"])
    assert result["summary"]["changed"] == len(expected)
    assert [e for e in feishu.wire.entries() if e["status"] == 429] == [], "the module provoked 429s"
    # One list page found all 50 records instead of 50 lookups.
    lists = feishu.wire.entries(method="GET", path_regex=RECORDS_PATH + "$")
    assert len(lists) == 1


def test_a_stale_version_is_reread_and_retried(feishu, playbook):
    rid = ids_where(feishu, 1, device_status=1)[0]
    feishu.faults.add(action="concurrent_edit", match={"method": "PUT"}, times=1)
    run = playbook(record_task({"device_record_id": rid}, device_status="untrusted"))
    assert run.returncode == 0, run.stdout
    statuses = [(e["status"], e.get("api_code")) for e in puts(feishu)]
    assert statuses == [(400, 1785008), (200, 0)]
    assert puts(feishu)[1]["query"]["version"] == "1"
    assert feishu.records[rid]["device_status"] == 2
    assert feishu.records[rid]["version"] == "2"


def test_a_record_that_keeps_changing_fails_naming_both_versions(feishu, playbook):
    rid = ids_where(feishu, 1, device_status=1)[0]
    feishu.faults.add(action="concurrent_edit", match={"method": "PUT"}, times=10)
    run = playbook(record_task({"device_record_id": rid}, device_status="untrusted"))
    assert run.returncode != 0
    result = run.task(TASK)["result"]
    assert result["outcomes"][0]["outcome"] == "failed"
    assert "version read first 0, last 3" in result["outcomes"][0]["reason"]
    assert len(puts(feishu)) == 3


def test_a_429_storm_converges(feishu, playbook):
    ids = ids_where(feishu, 5, device_status=1)
    feishu.faults.add(action="status", status=429, match={"method": "PUT"}, times=6)
    feishu.faults.add(action="status", status=429, match={"method": "GET"}, times=3)
    run = playbook(record_task({"device_record_id": ids}, device_status="untrusted"))
    assert run.returncode == 0, run.stdout
    assert run.task(TASK)["result"]["changed_records"] == ids
    assert len(applied_puts(feishu)) == 5
    assert all(feishu.records[rid]["device_status"] == 2 for rid in ids)


@pytest.mark.parametrize("fault", [
    dict(action="status", status=500),
    dict(action="status", status=503),
    dict(action="reset"),
    dict(action="reset_after_apply"),
])
def test_5xx_and_resets_on_a_write_converge_without_writing_twice(feishu, playbook, fault):
    ids = ids_where(feishu, 3, device_status=1)
    feishu.faults.add(match={"method": "PUT"}, times=1, **fault)
    run = playbook(record_task({"device_record_id": ids}, device_status="untrusted"))
    assert run.returncode == 0, run.stdout
    assert run.task(TASK)["result"]["changed_records"] == ids
    for rid in ids:
        assert feishu.records[rid]["device_status"] == 2
        # One applied write per record: version 0 -> 1, never 2.
        assert feishu.records[rid]["version"] == "1", fault
    again = playbook(record_task({"device_record_id": ids}, device_status="untrusted"))
    assert again.task(TASK)["result"]["changed"] is False


def test_resets_during_reads_are_retried(feishu, playbook):
    ids = ids_where(feishu, 2, device_status=1)
    feishu.faults.add(action="reset", match={"method": "GET"}, times=2)
    run = playbook(record_task({"device_record_id": ids}, device_status="untrusted"))
    assert run.returncode == 0, run.stdout


def test_token_expiry_mid_run_is_refreshed_once(feishu, playbook):
    ids = ids_where(feishu, 6, device_status=1)
    feishu.faults.add(action="expire_tokens", match={"method": "PUT"}, skip=2, times=1)
    run = playbook(record_task({"device_record_id": ids}, device_status="untrusted"))
    assert run.returncode == 0, run.stdout
    assert run.task(TASK)["result"]["changed_records"] == ids
    token_calls = feishu.wire.entries(method="POST", path_regex=r"/tenant_access_token/internal$")
    assert len(token_calls) == 2
    assert [e.get("api_code") for e in puts(feishu)].count(99991663) >= 1


def test_a_static_token_that_expires_fails_with_a_clear_message(feishu, playbook):
    rid = ids_where(feishu, 1, device_status=1)[0]
    tasks = ("- name: %s\n  fleetguard.devices.feishu_device_record:\n"
             "    tenant_access_token: t-0000000000000000000000000000dead\n    app_id: ''\n    app_secret: ''\n"
             "    device_record_id: ['%s']\n    device_status: untrusted\n  register: out\n") % (TASK, rid)
    run = playbook(tasks)
    assert run.returncode != 0
    msg = run.task(TASK)["result"]["msg"]
    assert "cannot be renewed without app_id and app_secret" in msg
    assert puts(feishu) == []


@pytest.mark.parametrize("selector_kind", ["missing", "ambiguous"])
def test_missing_and_ambiguous_identifiers_fail_before_any_write(feishu, playbook, selector_kind):
    good = ids_where(feishu, 2, device_status=1)
    names = [feishu.records[rid]["device_name"] for rid in good]
    if selector_kind == "missing":
        bad = "NO-SUCH-DEVICE"
    else:
        bad = feishu.records[ids_where(feishu, 1, device_status=0)[0]]["device_name"]
        twin = feishu.add_record(device_name=bad, device_system=2, serial_number="TWIN-1", device_status=0,
                                 device_ownership=2)
    run = playbook(record_task({"device_name": names + [bad]}, device_status="untrusted"))
    assert run.returncode != 0
    result = run.task(TASK)["result"]
    assert puts(feishu) == [], "a write happened before the lookup failed"
    assert bad in result["msg"]
    (problem,) = result["problems"]
    assert problem["reason"] == selector_kind
    if selector_kind == "ambiguous":
        assert twin["device_record_id"] in problem["candidates"]
        assert twin["device_record_id"] in result["msg"]


@pytest.mark.parametrize("evil", ["74000000000000/../x", "7400?version=1", "..", "%2e%2e", "7400#x", "a/b"])
def test_a_malformed_id_never_reaches_the_api(feishu, playbook, evil):
    good = ids_where(feishu, 1, device_status=1)[0]
    run = playbook(record_task({"device_record_id": [good, evil]}, device_status="untrusted"))
    assert run.returncode != 0
    assert "is not a Feishu device record id" in run.task(TASK)["result"]["msg"]
    for entry in feishu.wire.entries():
        assert entry["path"].startswith("/open-apis/"), entry["path"]
        assert ".." not in entry["path"] and "%2F" not in entry["path"].upper()
    assert puts(feishu) == []


def test_state_absent_deletes_and_already_gone_is_no_change(feishu, playbook):
    ids = ids_where(feishu, 2, device_status=0)
    tasks = ("- name: %s\n  fleetguard.devices.feishu_device_record:\n    device_record_id: %s\n"
             "    state: absent\n  register: out\n") % (TASK, json.dumps(ids))
    check = playbook(tasks, check=True, diff=True)
    assert check.task(TASK)["result"]["changed_records"] == ids
    assert feishu.wire.entries(method="DELETE") == []
    real = playbook(tasks)
    assert real.returncode == 0, real.stdout
    assert real.task(TASK)["result"]["changed_records"] == ids
    assert all(rid not in feishu.records for rid in ids)
    again = playbook(tasks)
    assert again.returncode == 0
    assert again.task(TASK)["result"]["changed"] is False


def test_secrets_never_reach_vvvv_output(feishu, playbook):
    rid = ids_where(feishu, 1, device_status=1)[0]
    feishu.faults.add(action="expire_tokens", match={"method": "PUT"}, times=1)
    run = playbook(record_task({"device_record_id": rid}, device_status="untrusted"), verbosity=4, diff=True)
    assert run.returncode == 0, run.stdout
    tokens = feishu.issued_tokens()
    assert len(tokens) == 2
    for secret in [feishu.app_secret] + tokens:
        assert secret not in run.stdout
        assert secret not in json.dumps(run.results)
    assert "Bearer" not in run.stdout


def test_a_wrong_secret_is_a_clear_error_without_the_secret(feishu, playbook):
    rid = ids_where(feishu, 1, device_status=1)[0]
    run = playbook(record_task({"device_record_id": rid}, device_status="untrusted"), verbosity=3,
                   extra_env={"FEISHU_APP_SECRET": "not-the-secret-123"})
    assert run.returncode != 0
    assert "Feishu refused app_id/app_secret" in run.task(TASK)["result"]["msg"]
    assert "not-the-secret-123" not in run.stdout


def test_module_defaults_group_all_carries_the_connection(feishu, playbook):
    rid = ids_where(feishu, 1, device_status=1)[0]
    tasks = """
- name: %s
  module_defaults:
    group/fleetguard.devices.all:
      app_id: "{{ lookup('env', 'FEISHU_APP_ID') }}"
      app_secret: "{{ lookup('env', 'FEISHU_APP_SECRET') }}"
      base_url: "{{ lookup('env', 'SANDBOX_FEISHU_URL') }}"
  fleetguard.devices.feishu_device_record:
    device_record_id: "%s"
    device_status: untrusted
  register: out
""" % (TASK, rid)
    run = playbook(tasks, module_defaults=False, extra_env={"FEISHU_APP_ID": feishu.app_id})
    assert run.returncode == 0, run.stdout
    assert run.task(TASK)["result"]["changed"] is True
