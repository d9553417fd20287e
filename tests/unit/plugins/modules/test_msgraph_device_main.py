"""main() of msgraph_device: argument handling, and what it hands to exit_json and fail_json.

Only main() and the module's documented options are used: the module talks to the Graph emulator on
127.0.0.1 (the graph_sandbox fixture, which is also the token authority) through O(graph_endpoint) and
O(authority_host), and run_main (tests/unit/conftest.py) ends the run at exit_json / fail_json.
"""

import json

import pytest

from ansible_collections.fleetguard.devices.plugins.modules import msgraph_device

RESULT_KEYS = {"changed", "devices", "changed_devices", "outcomes", "summary"}
SOME_ID = "0bf64ef7-73ec-48d0-8252-f615d75b1e24"


def connection(sandbox, **args):
    """Module arguments pointing the module at the emulator, plus `args`."""
    return dict(dict(graph_endpoint=sandbox.url, authority_host=sandbox.url, tenant_id=sandbox.tenant_id,
                     client_id=sandbox.client_id, client_secret=sandbox.client_secret), **args)


def device_ids(sandbox, count, windows=True, **fields):
    with sandbox.lock:
        ids = [oid for oid, device in sorted(sandbox.devices.items())
               if (device["operatingSystem"] == "Windows") == windows
               and all(device.get(key) == value for key, value in fields.items())]
    assert len(ids) >= count
    return ids[:count]


def counts(summary):
    """The outcomes that occurred, with their counts (the summary also lists every other outcome, at 0)."""
    return {outcome: count for outcome, count in summary.items() if count}


def writes(sandbox):
    """PATCH and DELETE requests (the emulator logs each request inside a $batch call as an entry of its own)."""
    return [(entry["method"], entry["path"]) for entry in sandbox.wire.entries() if entry["method"] in ("PATCH", "DELETE")]


@pytest.mark.parametrize("args, message", [
    (dict(id=[SOME_ID], display_name=["FG-WS-0001"], account_enabled=False),
     "parameters are mutually exclusive: id|device_id|display_name"),
    (dict(account_enabled=False),
     "one of the following is required: id, device_id, display_name"),
    (dict(id=[SOME_ID], account_enabled=False, state="disabled"),
     "value of state must be one of: present, absent, got: disabled"),
    (dict(id=[SOME_ID], account_enabled=False, api_version="v2.0"),
     "value of api_version must be one of: v1.0, beta, got: v2.0"),
    (dict(id=[SOME_ID], account_enabled="maybe"),
     "argument 'account_enabled' is of type str and we were unable to convert to bool"),
    (dict(id=[SOME_ID], extension_attributes=["extensionAttribute1"]),
     "argument 'extension_attributes' is of type list and we were unable to convert to dict"),
], ids=["identities-exclusive", "identity-required", "bad-state", "bad-api-version", "account-enabled-not-bool",
        "extension-attributes-not-dict"])
def test_bad_arguments_fail_before_any_request(run_main, graph_sandbox, args, message):
    run = run_main(msgraph_device, connection(graph_sandbox, **args))
    assert run.failed
    assert message in run.result["msg"]
    assert graph_sandbox.wire.entries() == []


def test_an_unknown_cloud_fails_before_any_request_naming_it(run_main, graph_sandbox):
    run = run_main(msgraph_device, connection(graph_sandbox, cloud="mars", id=[SOME_ID], account_enabled=False))
    assert run.failed
    assert "mars" in run.result["msg"]
    assert graph_sandbox.wire.entries() == []


@pytest.mark.parametrize("args, message", [
    (dict(), "nothing to set"),
    (dict(name="Kiosk"), "name can only be set with api_version beta and user"),
], ids=["nothing-to-set", "beta-only-property"])
def test_impossible_requests_fail_with_an_error_and_write_nothing(run_main, graph_sandbox, args, message):
    oid = device_ids(graph_sandbox, 1)[0]
    run = run_main(msgraph_device, connection(graph_sandbox, id=[oid], **args))
    assert run.failed
    assert message in run.result["msg"]
    assert run.result["changed"] is False
    assert run.result["error"]["message"] in run.result["msg"]
    assert writes(graph_sandbox) == []


def test_a_change_is_written_and_reported(run_main, graph_sandbox):
    oid = device_ids(graph_sandbox, 1, accountEnabled=True)[0]
    run = run_main(msgraph_device, connection(graph_sandbox, id=[oid], account_enabled=False))
    assert not run.failed, run.result
    assert RESULT_KEYS <= set(run.result)
    assert "diff" not in run.result
    assert run.result["changed"] is True and run.result["changed_devices"] == [oid]
    assert [device["accountEnabled"] for device in run.result["devices"]] == [False]
    assert run.result["outcomes"] == [{"identifier": oid, "id": oid, "outcome": "changed"}]
    assert counts(run.result["summary"]) == {"changed": 1}
    assert graph_sandbox.devices[oid]["accountEnabled"] is False
    assert [method for method, path in writes(graph_sandbox)] == ["PATCH"]


def test_a_second_run_reports_no_change_and_writes_nothing(run_main, graph_sandbox):
    oid = device_ids(graph_sandbox, 1, accountEnabled=True)[0]
    name = graph_sandbox.devices[oid]["displayName"]
    args = connection(graph_sandbox, display_name=[name], account_enabled=False)
    assert run_main(msgraph_device, args).result["changed"] is True
    graph_sandbox.wire.clear()

    run = run_main(msgraph_device, args)
    assert not run.failed
    assert run.result["changed"] is False and run.result["changed_devices"] == []
    assert run.result["outcomes"] == [{"identifier": name, "id": oid, "outcome": "unchanged"}]
    assert writes(graph_sandbox) == []


def test_check_mode_with_diff_predicts_the_device_and_writes_nothing(run_main, graph_sandbox):
    oid = device_ids(graph_sandbox, 1, accountEnabled=True)[0]
    run = run_main(msgraph_device, connection(graph_sandbox, id=[oid], account_enabled=False),
                   check_mode=True, diff=True)
    assert not run.failed
    assert run.result["changed"] is True and run.result["changed_devices"] == [oid]
    assert run.result["devices"][0]["accountEnabled"] is False
    assert [entry["before"] for entry in run.result["diff"]] == [{"accountEnabled": True}]
    assert [entry["after"] for entry in run.result["diff"]] == [{"accountEnabled": False}]
    assert writes(graph_sandbox) == []
    assert graph_sandbox.devices[oid]["accountEnabled"] is True


def test_extension_attributes_of_a_device_that_is_not_windows(run_main, graph_sandbox):
    oid = device_ids(graph_sandbox, 1, windows=False)[0]
    tag = {"extensionAttribute15": "quarantine:INC-1234"}
    run = run_main(msgraph_device, connection(graph_sandbox, id=[oid], extension_attributes=tag))
    assert not run.failed, run.result
    assert run.result["changed"] is True
    assert run.result["devices"][0]["extensionAttributes"]["extensionAttribute15"] == "quarantine:INC-1234"


def test_an_app_only_caller_cannot_change_more_than_tags_of_a_device_that_is_not_windows(run_main, graph_sandbox):
    oid = device_ids(graph_sandbox, 1, windows=False, accountEnabled=True)[0]
    run = run_main(msgraph_device, connection(graph_sandbox, id=[oid], account_enabled=False))
    assert run.failed
    assert oid in run.result["msg"] and graph_sandbox.devices[oid]["operatingSystem"] in run.result["msg"]
    assert run.result["changed"] is False
    assert writes(graph_sandbox) == []


def test_absent_deletes_and_a_second_run_finds_nothing_to_do(run_main, graph_sandbox):
    oid = device_ids(graph_sandbox, 1)[0]
    device_id = graph_sandbox.devices[oid]["deviceId"]
    args = connection(graph_sandbox, device_id=[device_id], state="absent")

    run = run_main(msgraph_device, args)
    assert not run.failed, run.result
    assert run.result["changed"] is True and run.result["changed_devices"] == [oid]
    assert run.result["devices"] == [{}]
    assert oid not in graph_sandbox.devices

    again = run_main(msgraph_device, args)
    assert not again.failed and again.result["changed"] is False


def test_an_identifier_that_matches_nothing_fails_before_any_write(run_main, graph_sandbox):
    oid = device_ids(graph_sandbox, 1, accountEnabled=True)[0]
    name = graph_sandbox.devices[oid]["displayName"]
    run = run_main(msgraph_device, connection(graph_sandbox, display_name=[name, "NO-SUCH-DEVICE"],
                                              account_enabled=False))
    assert run.failed
    assert "NO-SUCH-DEVICE" in run.result["msg"]
    assert run.result["changed"] is False
    assert run.result["problems"] == [{"field": "display_name", "value": "NO-SUCH-DEVICE", "reason": "missing",
                                       "candidates": []}]
    assert writes(graph_sandbox) == []


def test_refused_credentials_fail_with_the_api_error_and_without_the_secret(run_main, graph_sandbox):
    secret = "not-the-client-secret-5150"
    oid = device_ids(graph_sandbox, 1)[0]
    run = run_main(msgraph_device, connection(graph_sandbox, id=[oid], account_enabled=False, client_secret=secret))
    assert run.failed
    assert run.result["changed"] is False
    assert run.result["error"]["status"] == 401 and run.result["error"]["path"].endswith("/oauth2/v2.0/token")
    assert secret in run.no_log_values
    assert secret not in json.dumps(run.result)


def test_secrets_are_no_log_and_never_in_the_result(run_main, graph_sandbox):
    oid = device_ids(graph_sandbox, 1, accountEnabled=True)[0]
    run = run_main(msgraph_device, connection(graph_sandbox, id=[oid], account_enabled=False), diff=True)
    assert not run.failed
    assert graph_sandbox.client_secret in run.no_log_values
    assert graph_sandbox.client_secret not in json.dumps(run.result)

    token = graph_sandbox.issue_token()
    run = run_main(msgraph_device, dict(graph_endpoint=graph_sandbox.url, access_token=token, id=[oid],
                                        account_enabled=True))
    assert not run.failed, run.result
    assert run.result["changed"] is True
    assert token in run.no_log_values
    assert token not in json.dumps(run.result)


def test_connection_options_fall_back_to_the_environment_awx_names_included(run_main, graph_sandbox):
    oid = device_ids(graph_sandbox, 1, accountEnabled=True)[0]
    env = dict(MSGRAPH_ENDPOINT=graph_sandbox.url, AZURE_AUTHORITY_HOST=graph_sandbox.url,
               AZURE_TENANT=graph_sandbox.tenant_id, AZURE_CLIENT_ID=graph_sandbox.client_id,
               AZURE_SECRET=graph_sandbox.client_secret)
    run = run_main(msgraph_device, dict(id=[oid], account_enabled=False), env=env)
    assert not run.failed, run.result
    assert run.result["changed"] is True
    assert graph_sandbox.client_secret in run.no_log_values
    assert graph_sandbox.client_secret not in json.dumps(run.result)
