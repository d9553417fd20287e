"""main() of msgraph_device_info: argument handling, and what it hands to exit_json and fail_json.

Only main() and the module's documented options are used: the module talks to the Graph emulator on
127.0.0.1 (the graph_sandbox fixture, which is also the token authority) through O(graph_endpoint) and
O(authority_host), and run_main (tests/unit/conftest.py) ends the run at exit_json / fail_json.
"""

import json

import pytest

from ansible_collections.fleetguard.devices.plugins.modules import msgraph_device_info

NO_SUCH_ID = "00000000-0000-4000-8000-000000000000"


def connection(sandbox, **args):
    """Module arguments pointing the module at the emulator, plus `args`."""
    return dict(dict(graph_endpoint=sandbox.url, authority_host=sandbox.url, tenant_id=sandbox.tenant_id,
                     client_id=sandbox.client_id, client_secret=sandbox.client_secret), **args)


def windows_ids(sandbox):
    with sandbox.lock:
        return sorted(oid for oid, device in sandbox.devices.items() if device["operatingSystem"] == "Windows")


def graph_calls(sandbox):
    """Requests other than the token request."""
    return [entry for entry in sandbox.wire.entries() if not entry["path"].endswith("/oauth2/v2.0/token")]


@pytest.mark.parametrize("args, message", [
    (dict(id=[NO_SUCH_ID], filter="operatingSystem eq 'Windows'"),
     "parameters are mutually exclusive: id|device_id|display_name|filter"),
    (dict(id=[NO_SUCH_ID], display_name=["FG-WS-0001"]),
     "parameters are mutually exclusive: id|device_id|display_name|filter"),
    (dict(api_version="v2.0"), "value of api_version must be one of: v1.0, beta, got: v2.0"),
    (dict(limit="all"), "argument 'limit' is of type str"),
    (dict(advanced_query="sometimes"), "argument 'advanced_query' is of type str"),
], ids=["id-and-filter", "two-identities", "bad-api-version", "limit-not-int", "advanced-query-not-bool"])
def test_bad_arguments_fail_before_any_request(run_main, graph_sandbox, args, message):
    run = run_main(msgraph_device_info, connection(graph_sandbox, **args))
    assert run.failed
    assert message in run.result["msg"]
    assert graph_sandbox.wire.entries() == []


@pytest.mark.parametrize("limit", [0, -1])
def test_limit_below_one_fails_naming_it_before_any_graph_call(run_main, graph_sandbox, limit):
    run = run_main(msgraph_device_info, connection(graph_sandbox, limit=limit))
    assert run.failed
    assert run.result["msg"] == "limit must be at least 1, not %d" % limit
    assert run.result["changed"] is False and run.result["error"]["message"] == run.result["msg"]
    assert graph_calls(graph_sandbox) == []


def test_devices_by_id_with_the_missing_ones_named(run_main, graph_sandbox):
    first, second = windows_ids(graph_sandbox)[:2]
    run = run_main(msgraph_device_info, connection(graph_sandbox, id=[first, NO_SUCH_ID, second]))
    assert not run.failed, run.result
    assert set(run.result) == {"changed", "devices", "missing"}
    assert run.result["changed"] is False
    assert [device["id"] for device in run.result["devices"]] == [first, second]
    assert run.result["missing"] == [NO_SUCH_ID]


def test_devices_by_display_name(run_main, graph_sandbox):
    oid = windows_ids(graph_sandbox)[0]
    name = graph_sandbox.devices[oid]["displayName"]
    run = run_main(msgraph_device_info, connection(graph_sandbox, display_name=[name, "NO-SUCH-DEVICE"]))
    assert not run.failed, run.result
    assert [device["id"] for device in run.result["devices"]] == [oid]
    assert run.result["missing"] == ["NO-SUCH-DEVICE"]


def test_a_filter_reads_every_page_and_select_limits_the_properties(run_main, graph_sandbox):
    run = run_main(msgraph_device_info, connection(graph_sandbox, filter="operatingSystem eq 'Windows'",
                                                   select=["id", "displayName"]))
    assert not run.failed, run.result
    assert sorted(device["id"] for device in run.result["devices"]) == windows_ids(graph_sandbox)
    assert all(set(device) == {"id", "displayName"} for device in run.result["devices"])
    assert run.result["missing"] == []
    assert "count" not in run.result


def test_an_advanced_query_returns_graphs_count(run_main, graph_sandbox):
    run = run_main(msgraph_device_info, connection(graph_sandbox, filter="operatingSystem eq 'Windows'",
                                                   advanced_query=True, limit=2))
    assert not run.failed, run.result
    assert len(run.result["devices"]) == 2
    assert run.result["count"] == len(windows_ids(graph_sandbox))


def test_a_filter_graph_rejects_fails_with_graphs_error(run_main, graph_sandbox):
    run = run_main(msgraph_device_info, connection(graph_sandbox, filter="operatingSystem equals 'Windows'"))
    assert run.failed
    assert run.result["changed"] is False
    assert run.result["error"]["status"] == 400
    assert run.result["error"]["api_code"] == "Request_BadRequest"
    assert "HTTP 400" in run.result["msg"]


def test_check_mode_reads_as_usual_and_changes_nothing(run_main, graph_sandbox):
    run = run_main(msgraph_device_info, connection(graph_sandbox, limit=3), check_mode=True)
    assert not run.failed
    assert run.result["changed"] is False and len(run.result["devices"]) == 3
    assert {entry["method"] for entry in graph_calls(graph_sandbox)} == {"GET"}


def test_the_client_secret_is_no_log_and_never_in_the_result(run_main, graph_sandbox):
    run = run_main(msgraph_device_info, connection(graph_sandbox, limit=1))
    assert not run.failed
    assert graph_sandbox.client_secret in run.no_log_values
    assert graph_sandbox.client_secret not in json.dumps(run.result)


def test_refused_credentials_fail_with_the_api_error_and_without_the_secret(run_main, graph_sandbox):
    secret = "not-the-client-secret-5150"
    run = run_main(msgraph_device_info, connection(graph_sandbox, client_secret=secret, limit=1))
    assert run.failed
    assert run.result["changed"] is False
    assert run.result["error"]["status"] == 401
    assert secret in run.no_log_values
    assert secret not in json.dumps(run.result)
