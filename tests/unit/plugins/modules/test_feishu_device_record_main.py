"""main() of feishu_device_record: argument handling, and what it hands to exit_json and fail_json.

Only main() and the module's documented options are used: the module talks to the Feishu emulator on
127.0.0.1 (the feishu_sandbox fixture) through O(base_url), and run_main (tests/unit/conftest.py) ends the
run at exit_json / fail_json.
"""

import json

import pytest

from ansible_collections.fleetguard.devices.plugins.modules import feishu_device_record

TRUSTED, UNTRUSTED = 1, 2
RESULT_KEYS = {"changed", "device_records", "changed_records", "outcomes", "summary"}


def connection(sandbox, **args):
    """Module arguments pointing the module at the emulator, plus `args`."""
    return dict(dict(base_url=sandbox.url, app_id=sandbox.app_id, app_secret=sandbox.app_secret), **args)


def record_ids(sandbox, status, count):
    with sandbox.lock:
        ids = [rid for rid, record in sorted(sandbox.records.items()) if record.get("device_status", 0) == status]
    assert len(ids) >= count
    return ids[:count]


def counts(summary):
    """The outcomes that occurred, with their counts (the summary also lists every other outcome, at 0)."""
    return {outcome: count for outcome, count in summary.items() if count}


def writes(sandbox):
    return [(entry["method"], entry["path"]) for entry in sandbox.wire.entries() if entry["method"] in ("PUT", "DELETE")]


@pytest.mark.parametrize("args, message", [
    (dict(device_record_id=["7400000000000000001"], serial_number=["C02FG0001"], device_status="trusted"),
     "parameters are mutually exclusive: device_record_id|serial_number|device_name"),
    (dict(device_status="trusted"),
     "one of the following is required: device_record_id, serial_number, device_name"),
    (dict(device_name=["FG-DESKTOP-0001"]),
     "state is present but any of the following are missing: device_status, device_ownership"),
    (dict(device_name=["FG-DESKTOP-0001"], device_status="blocked"),
     "value of device_status must be one of: unknown, trusted, untrusted, got: blocked"),
    (dict(device_name=["FG-DESKTOP-0001"], device_ownership="borrowed"),
     "value of device_ownership must be one of: unknown, personal, company, got: borrowed"),
    (dict(device_name=["FG-DESKTOP-0001"], state="gone"),
     "value of state must be one of: present, absent, got: gone"),
], ids=["identities-exclusive", "identity-required", "present-needs-a-field", "bad-status", "bad-ownership",
        "bad-state"])
def test_bad_arguments_fail_before_any_request(run_main, feishu_sandbox, args, message):
    run = run_main(feishu_device_record, connection(feishu_sandbox, **args))
    assert run.failed
    assert message in run.result["msg"]
    assert feishu_sandbox.wire.entries() == []


def test_absent_needs_no_field(run_main, feishu_sandbox):
    run = run_main(feishu_device_record, connection(feishu_sandbox, device_name=["NO-SUCH-DEVICE"], state="absent"))
    assert not run.failed
    assert run.result["changed"] is False


def test_a_change_is_written_and_reported(run_main, feishu_sandbox):
    rid = record_ids(feishu_sandbox, TRUSTED, 1)[0]
    run = run_main(feishu_device_record, connection(feishu_sandbox, device_record_id=[rid], device_status="untrusted"))
    assert not run.failed, run.result
    assert RESULT_KEYS <= set(run.result)
    assert "diff" not in run.result
    assert run.result["changed"] is True
    assert run.result["changed_records"] == [rid]
    assert [record["device_status"] for record in run.result["device_records"]] == [UNTRUSTED]
    assert run.result["outcomes"] == [{"identifier": rid, "device_record_id": rid, "outcome": "changed"}]
    assert counts(run.result["summary"]) == {"changed": 1}
    assert feishu_sandbox.records[rid]["device_status"] == UNTRUSTED
    assert [method for method, path in writes(feishu_sandbox)] == ["PUT"]


def test_a_second_run_reports_no_change_and_writes_nothing(run_main, feishu_sandbox):
    rid = record_ids(feishu_sandbox, TRUSTED, 1)[0]
    serial = feishu_sandbox.records[rid]["serial_number"]
    args = connection(feishu_sandbox, serial_number=[serial], device_status="untrusted")
    assert run_main(feishu_device_record, args).result["changed"] is True
    feishu_sandbox.wire.clear()

    run = run_main(feishu_device_record, args)
    assert not run.failed
    assert run.result["changed"] is False and run.result["changed_records"] == []
    assert run.result["outcomes"] == [{"identifier": serial, "device_record_id": rid, "outcome": "unchanged"}]
    assert writes(feishu_sandbox) == []


def test_check_mode_with_diff_predicts_the_record_and_writes_nothing(run_main, feishu_sandbox):
    rid = record_ids(feishu_sandbox, TRUSTED, 1)[0]
    run = run_main(feishu_device_record, connection(feishu_sandbox, device_record_id=[rid], device_status="untrusted"),
                   check_mode=True, diff=True)
    assert not run.failed
    assert run.result["changed"] is True and run.result["changed_records"] == [rid]
    assert run.result["device_records"][0]["device_status"] == UNTRUSTED
    assert [entry["after"] for entry in run.result["diff"]] == [{"device_status": "untrusted"}]
    assert [entry["before"] for entry in run.result["diff"]] == [{"device_status": "trusted"}]
    assert writes(feishu_sandbox) == []
    assert feishu_sandbox.records[rid]["device_status"] == TRUSTED


def test_absent_deletes_and_a_second_run_finds_nothing_to_do(run_main, feishu_sandbox):
    rid = record_ids(feishu_sandbox, TRUSTED, 1)[0]
    name = feishu_sandbox.records[rid]["device_name"]
    args = connection(feishu_sandbox, device_name=[name], state="absent")

    run = run_main(feishu_device_record, args)
    assert not run.failed
    assert run.result["changed"] is True and run.result["changed_records"] == [rid]
    assert run.result["device_records"] == [{}]
    assert rid not in feishu_sandbox.records

    again = run_main(feishu_device_record, args)
    assert not again.failed and again.result["changed"] is False


def test_an_identifier_that_matches_nothing_fails_before_any_write(run_main, feishu_sandbox):
    rid = record_ids(feishu_sandbox, TRUSTED, 1)[0]
    name = feishu_sandbox.records[rid]["device_name"]
    run = run_main(feishu_device_record,
                   connection(feishu_sandbox, device_name=[name, "NO-SUCH-DEVICE"], device_status="untrusted"))
    assert run.failed
    assert "NO-SUCH-DEVICE" in run.result["msg"]
    assert run.result["changed"] is False
    assert run.result["problems"] == [{"field": "device_name", "value": "NO-SUCH-DEVICE", "reason": "missing",
                                       "candidates": []}]
    assert writes(feishu_sandbox) == []


def test_a_device_that_keeps_failing_fails_the_task_and_names_every_outcome(run_main, feishu_sandbox):
    ids = record_ids(feishu_sandbox, TRUSTED, 3)
    feishu_sandbox.faults.add(action="status", status=500, match={"method": "PUT", "path_regex": "/%s$" % ids[1]},
                              times=10)
    run = run_main(feishu_device_record,
                   connection(feishu_sandbox, device_record_id=ids, device_status="untrusted", max_retries=0))
    assert run.failed
    assert ids[1] in run.result["msg"]
    assert run.result["changed"] is True
    assert [outcome["outcome"] for outcome in run.result["outcomes"]] == ["changed", "failed", "changed"]
    assert "HTTP 500" in run.result["outcomes"][1]["reason"]
    assert counts(run.result["summary"]) == {"changed": 2, "failed": 1}


def test_refused_credentials_fail_with_the_api_error_and_without_the_secret(run_main, feishu_sandbox):
    secret = "not-the-app-secret-5150"
    run = run_main(feishu_device_record, connection(feishu_sandbox, device_name=["FG-DESKTOP-0001"],
                                                    device_status="trusted", app_secret=secret))
    assert run.failed
    assert run.result["changed"] is False
    assert "app_secret" in run.result["msg"]
    assert run.result["error"]["status"] == 400 and run.result["error"]["path"].endswith("/tenant_access_token/internal")
    assert secret in run.no_log_values
    assert secret not in json.dumps(run.result)


def test_secrets_are_no_log_and_never_in_the_result(run_main, feishu_sandbox):
    rid = record_ids(feishu_sandbox, TRUSTED, 1)[0]
    run = run_main(feishu_device_record, connection(feishu_sandbox, device_record_id=[rid], device_status="untrusted"),
                   diff=True)
    assert not run.failed
    assert feishu_sandbox.app_secret in run.no_log_values
    assert feishu_sandbox.app_secret not in json.dumps(run.result)

    (token,) = set(feishu_sandbox.issued_tokens())
    run = run_main(feishu_device_record, dict(base_url=feishu_sandbox.url, tenant_access_token=token,
                                              device_record_id=[rid], device_status="trusted"))
    assert not run.failed and run.result["changed"] is True
    assert token in run.no_log_values
    assert token not in json.dumps(run.result)


def test_connection_options_fall_back_to_the_environment(run_main, feishu_sandbox):
    rid = record_ids(feishu_sandbox, TRUSTED, 1)[0]
    env = dict(FEISHU_BASE_URL=feishu_sandbox.url, FEISHU_APP_ID=feishu_sandbox.app_id,
               FEISHU_APP_SECRET=feishu_sandbox.app_secret)
    run = run_main(feishu_device_record, dict(device_record_id=[rid], device_ownership="personal"), env=env)
    assert not run.failed, run.result
    assert run.result["device_records"][0]["device_ownership"] == 1
    assert feishu_sandbox.app_secret in run.no_log_values
    assert feishu_sandbox.app_secret not in json.dumps(run.result)
