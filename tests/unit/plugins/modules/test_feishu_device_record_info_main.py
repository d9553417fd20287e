"""main() of feishu_device_record_info: argument handling, and what it hands to exit_json and fail_json.

Only main() and the module's documented options are used: the module talks to the Feishu emulator on
127.0.0.1 (the feishu_sandbox fixture) through O(base_url), and run_main (tests/unit/conftest.py) ends the
run at exit_json / fail_json.
"""

import json

import pytest

from ansible_collections.fleetguard.devices.plugins.modules import feishu_device_record_info

UNTRUSTED, COMPANY = 2, 2
NO_SUCH_ID = "7400000000000999999"


def connection(sandbox, **args):
    """Module arguments pointing the module at the emulator, plus `args`."""
    return dict(dict(base_url=sandbox.url, app_id=sandbox.app_id, app_secret=sandbox.app_secret), **args)


def api_calls(sandbox):
    """Requests other than the token request."""
    return [entry for entry in sandbox.wire.entries() if "tenant_access_token" not in entry["path"]]


def test_ids_and_filters_are_mutually_exclusive(run_main, feishu_sandbox):
    run = run_main(feishu_device_record_info,
                   connection(feishu_sandbox, device_record_id=["7400000000000000001"], filters={"device_status": 1}))
    assert run.failed
    assert "parameters are mutually exclusive: device_record_id|filters" in run.result["msg"]
    assert feishu_sandbox.wire.entries() == []


@pytest.mark.parametrize("args, message", [
    (dict(limit="many"), "argument 'limit' is of type str"),
    (dict(filters="device_status"), "argument 'filters' is of type str"),
    (dict(validate_certs="perhaps"), "argument 'validate_certs' is of type str"),
], ids=["limit-not-int", "filters-not-dict", "validate-certs-not-bool"])
def test_values_of_the_wrong_type_fail_before_any_request(run_main, feishu_sandbox, args, message):
    run = run_main(feishu_device_record_info, connection(feishu_sandbox, **args))
    assert run.failed
    assert message in run.result["msg"]
    assert feishu_sandbox.wire.entries() == []


@pytest.mark.parametrize("args, message", [
    (dict(limit=0), "limit must be at least 1, not 0"),
    (dict(limit=-3), "limit must be at least 1, not -3"),
    (dict(filters={"colour": "red"}), "unknown filter 'colour'"),
    (dict(device_record_id=["abc"]), "'abc' is not a Feishu device record id"),
], ids=["limit-zero", "limit-negative", "unknown-filter", "malformed-id"])
def test_bad_values_fail_before_any_api_call(run_main, feishu_sandbox, args, message):
    run = run_main(feishu_device_record_info, connection(feishu_sandbox, **args))
    assert run.failed
    assert message in run.result["msg"]
    assert run.result["changed"] is False
    assert run.result["error"]["message"] in run.result["msg"]
    assert api_calls(feishu_sandbox) == []


def test_records_by_id_with_the_missing_ones_named(run_main, feishu_sandbox):
    first, second = sorted(feishu_sandbox.records)[:2]
    run = run_main(feishu_device_record_info,
                   connection(feishu_sandbox, device_record_id=[first, NO_SUCH_ID, second]))
    assert not run.failed, run.result
    assert set(run.result) == {"changed", "device_records", "missing"}
    assert run.result["changed"] is False
    assert [record["device_record_id"] for record in run.result["device_records"]] == [first, second]
    assert run.result["missing"] == [NO_SUCH_ID]


def test_filters_accept_names_and_every_page_is_read(run_main, feishu_sandbox):
    with feishu_sandbox.lock:
        expected = sorted(rid for rid, record in feishu_sandbox.records.items()
                          if record.get("device_status") == UNTRUSTED and record.get("device_ownership") == COMPANY)
    assert expected
    run = run_main(feishu_device_record_info,
                   connection(feishu_sandbox, filters={"device_status": "untrusted", "device_ownership": "company"}))
    assert not run.failed, run.result
    assert sorted(record["device_record_id"] for record in run.result["device_records"]) == expected
    assert run.result["missing"] == []


def test_limit_stops_early(run_main, feishu_sandbox):
    run = run_main(feishu_device_record_info, connection(feishu_sandbox, limit=3))
    assert not run.failed
    assert len(run.result["device_records"]) == 3


def test_check_mode_reads_as_usual_and_changes_nothing(run_main, feishu_sandbox):
    run = run_main(feishu_device_record_info, connection(feishu_sandbox, limit=2), check_mode=True)
    assert not run.failed
    assert run.result["changed"] is False and len(run.result["device_records"]) == 2
    assert {entry["method"] for entry in api_calls(feishu_sandbox)} == {"GET"}


def test_the_app_secret_is_no_log_and_never_in_the_result(run_main, feishu_sandbox):
    run = run_main(feishu_device_record_info, connection(feishu_sandbox, limit=1))
    assert not run.failed
    assert feishu_sandbox.app_secret in run.no_log_values
    assert feishu_sandbox.app_secret not in json.dumps(run.result)


def test_refused_credentials_fail_with_the_api_error_and_without_the_secret(run_main, feishu_sandbox):
    secret = "not-the-app-secret-5150"
    run = run_main(feishu_device_record_info, connection(feishu_sandbox, app_secret=secret, limit=1))
    assert run.failed
    assert run.result["changed"] is False
    assert run.result["error"]["status"] == 400
    assert secret in run.no_log_values
    assert secret not in json.dumps(run.result)
