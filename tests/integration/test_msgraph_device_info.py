"""fleetguard.devices.msgraph_device_info against the Graph sandbox."""

import json

TASK = "read devices"


def info_task(**args):
    return "- name: %s\n  fleetguard.devices.msgraph_device_info: %s\n  register: out\n" % (TASK, json.dumps(args))


def test_a_raw_filter_follows_every_page(graph, playbook):
    with graph.lock:
        expected = sorted(oid for oid, d in graph.devices.items() if d["operatingSystem"] == "Windows")
    run = playbook(info_task(filter="operatingSystem eq 'Windows'", select=["id", "displayName"], limit=500))
    assert run.returncode == 0, run.stdout
    result = run.task(TASK)["result"]
    assert result["changed"] is False
    assert sorted(d["id"] for d in result["devices"]) == expected
    assert set(result["devices"][0]) <= {"id", "displayName", "@odata.type"}


def test_paging_with_small_pages_and_an_advanced_query(graph, playbook):
    with graph.lock:
        device = next(d for oid, d in sorted(graph.devices.items()))
        graph.devices[device["id"]]["extensionAttributes"]["extensionAttribute15"] = "quarantine:X"
    run = playbook(info_task(filter="startswith(extensionAttributes/extensionAttribute15, 'quarantine:')",
                             advanced_query=True))
    assert run.returncode == 0, run.stdout
    result = run.task(TASK)["result"]
    assert [d["id"] for d in result["devices"]] == [device["id"]]
    assert result["count"] == 1
    (call,) = [e for e in graph.wire.entries(method="GET") if e["path"].endswith("/devices")]
    assert call["headers"].get("ConsistencyLevel") == "eventual" and call["query"]["$count"] == "true"


def test_limit_stops_paging(graph, playbook):
    run = playbook(info_task(limit=7))
    assert len(run.task(TASK)["result"]["devices"]) == 7
    (call,) = [e for e in graph.wire.entries(method="GET") if e["path"].endswith("/devices")]
    assert call["query"]["$top"] == "7"


def test_lookups_by_name_report_the_missing(graph, playbook):
    with graph.lock:
        device = next(d for oid, d in sorted(graph.devices.items()))
    run = playbook(info_task(display_name=[device["displayName"], "NOPE"]))
    result = run.task(TASK)["result"]
    assert [d["id"] for d in result["devices"]] == [device["id"]]
    assert result["missing"] == ["NOPE"]


def test_an_advanced_filter_without_advanced_query_gets_graphs_error(graph, playbook):
    run = playbook(info_task(filter="extensionAttributes/extensionAttribute15 eq 'x'"))
    assert run.returncode != 0
    assert "Request_UnsupportedQuery" in run.task(TASK)["result"]["msg"]
