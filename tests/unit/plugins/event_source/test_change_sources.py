"""The change sources of extensions/eda: main(queue, args) with an asyncio queue, and their rounds, against the
emulators on 127.0.0.1 (nothing is mocked inside the code)."""

import asyncio
import json
import os
import stat
import time

import pytest

from ansible_collections.fleetguard.devices.plugins.module_utils.device_changes import ChangeTracker
from ansible_collections.fleetguard.devices.plugins.module_utils.errors import InputError
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_delta import GraphDeviceChanges
from ansible_collections.fleetguard.devices.tests.unit.plugins.event_source.source_harness import (
    collect, delta_calls, feishu_poller, graph_poller, round_of, source_main)

# --- through main(queue, args) ------------------------------------------------------------------------


def test_graph_source_emits_a_change_within_one_interval(graph_sandbox, graph_args):
    device_id = next(iter(graph_sandbox.devices))
    changed = []

    def change_once(events):
        if not changed and delta_calls(graph_sandbox):
            with graph_sandbox.lock:
                graph_sandbox.devices[device_id]["isCompliant"] = False
                graph_sandbox.devices[device_id]["accountEnabled"] = True
            changed.append(time.monotonic())

    with graph_sandbox.lock:
        graph_sandbox.devices[device_id]["isCompliant"] = True
        graph_sandbox.devices[device_id]["accountEnabled"] = False
    events = asyncio.run(collect(source_main("msgraph_device_changes"), graph_args, 1, 15, change_once))
    assert len(events) == 1
    change = events[0]["fleetguard"]
    assert change["directory"] == "msgraph" and change["change"] == "updated" and change["id"] == device_id
    assert change["changed"] == ["accountEnabled", "isCompliant"]
    assert change["previous"] == {"accountEnabled": False, "isCompliant": True}
    assert change["device"]["accountEnabled"] is True and change["device"]["deviceId"]
    assert change["observed_at"].endswith("Z")
    assert time.monotonic() - changed[0] < 5 + 10


def test_feishu_source_with_initial_emit_puts_every_record_as_added(feishu_sandbox, feishu_args):
    events = asyncio.run(collect(source_main("feishu_device_record_changes"), dict(feishu_args, initial="emit"),
                                 len(feishu_sandbox.records), 10))
    assert len(events) == len(feishu_sandbox.records)
    assert {event["fleetguard"]["change"] for event in events} == {"added"}
    assert {event["fleetguard"]["id"] for event in events} == set(feishu_sandbox.records)
    assert events[0]["fleetguard"]["device"]["device_status"] in ("trusted", "untrusted", "unknown")


@pytest.mark.parametrize("name, interval, minimum", [("msgraph_device_changes", 4, 5),
                                                     ("feishu_device_record_changes", 29, 30)])
def test_an_interval_below_the_minimum_ends_the_source_naming_the_value(
        name, interval, minimum, graph_args, feishu_args, graph_sandbox):
    events = asyncio.run(collect(source_main(name), dict(interval=interval), 1, 5))
    assert isinstance(events[-1], InputError)
    assert "interval must be at least %d seconds, not %d" % (minimum, interval) in str(events[-1])
    assert delta_calls(graph_sandbox) == []


def test_unknown_arguments_are_refused(graph_args):
    events = asyncio.run(collect(source_main("msgraph_device_changes"), dict(graph_args, intervall=5), 1, 5))
    assert isinstance(events[-1], InputError) and "intervall" in str(events[-1])


def test_refused_credentials_end_the_graph_source_before_any_delta_call(graph_sandbox, graph_args, monkeypatch):
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "not-the-secret")
    events = asyncio.run(collect(source_main("msgraph_device_changes"), graph_args, 1, 10))
    assert type(events[-1]).__name__ == "AuthenticationError"
    assert "not-the-secret" not in str(events[-1])
    assert delta_calls(graph_sandbox) == []


def test_refused_credentials_end_the_feishu_source_before_any_list_call(feishu_sandbox, feishu_args, monkeypatch):
    monkeypatch.setenv("FEISHU_APP_SECRET", "not-the-secret")
    events = asyncio.run(collect(source_main("feishu_device_record_changes"), feishu_args, 1, 10))
    assert type(events[-1]).__name__ == "AuthenticationError"
    assert [entry for entry in feishu_sandbox.wire.entries() if entry["method"] == "GET"] == []


def test_a_failed_round_does_not_end_the_source_and_is_read_again(graph_sandbox, graph_args):
    device_id = next(iter(graph_sandbox.devices))
    steps = []

    def fail_then_change(events):
        if not steps and delta_calls(graph_sandbox):
            graph_sandbox.faults.add("status", match={"path_regex": "/devices/delta"}, status=503, times=2)
            with graph_sandbox.lock:
                graph_sandbox.devices[device_id]["displayName"] = "renamed during an outage"
            steps.append(1)

    events = asyncio.run(collect(source_main("msgraph_device_changes"), graph_args, 1, 20, fail_then_change))
    assert [event["fleetguard"]["changed"] for event in events] == [["displayName"]]
    statuses = [entry["status"] for entry in delta_calls(graph_sandbox)]
    assert 503 in statuses and statuses[-1] == 200


# --- rounds of the blocking half (the same code main() runs in a thread) ---------------------------------


def test_an_idle_graph_poll_is_one_call(graph_sandbox, graph_args):
    poller = graph_poller(graph_args)
    round_of(poller)
    before = len(graph_sandbox.wire.entries())
    assert round_of(poller) == [] and round_of(poller) == []
    assert [entry["path"] for entry in graph_sandbox.wire.entries()[before:]] == ["/v1.0/devices/delta"] * 2


def test_beta_delta_query(graph_sandbox, graph_args):
    poller = graph_poller(graph_args, api_version="beta", initial="emit")
    assert len(round_of(poller)) == len(graph_sandbox.devices)
    assert delta_calls(graph_sandbox)[0]["path"] == "/beta/devices/delta"


def test_a_change_of_nothing_tracked_emits_nothing(graph_sandbox, graph_args):
    poller = graph_poller(graph_args)
    round_of(poller)
    with graph_sandbox.lock:
        next(iter(graph_sandbox.devices.values()))["approximateLastSignInDateTime"] = "2026-01-01T00:00:00Z"
    assert round_of(poller) == []


def test_sign_in_times_are_tracked_when_asked_for(graph_sandbox, graph_args):
    poller = graph_poller(graph_args, properties=["approximateLastSignInDateTime"])
    round_of(poller)
    with graph_sandbox.lock:
        next(iter(graph_sandbox.devices.values()))["approximateLastSignInDateTime"] = "2026-01-01T00:00:00Z"
    assert [change["changed"] for change in round_of(poller)] == [["approximateLastSignInDateTime"]]


def test_removed_device_carries_its_last_snapshot(graph_sandbox, graph_args):
    poller = graph_poller(graph_args)
    round_of(poller)
    device = next(iter(graph_sandbox.devices.values()))
    with graph_sandbox.lock:
        graph_sandbox._forget(device)
    changes = round_of(poller)
    assert [(change["change"], change["id"]) for change in changes] == [("removed", device["id"])]
    assert changes[0]["device"]["displayName"] == device["displayName"] and changes[0]["previous"] == {}


def test_an_expired_delta_token_gives_one_resync_event_then_only_real_differences(graph_sandbox, graph_args):
    poller = graph_poller(graph_args)
    round_of(poller)
    device_id = next(iter(graph_sandbox.devices))
    with graph_sandbox.lock:
        graph_sandbox.devices[device_id]["operatingSystem"] = "Linux"
    graph_sandbox.expire_delta_tokens()
    changes = round_of(poller)
    assert [(change["change"], change["id"]) for change in changes] == [("resync", None), ("updated", device_id)]
    assert changes[0]["device"] == {} and changes[1]["changed"] == ["operatingSystem"]
    assert round_of(poller) == []


def test_a_round_not_committed_is_read_again(graph_sandbox, graph_args):
    poller = graph_poller(graph_args)
    round_of(poller)
    device_id = next(iter(graph_sandbox.devices))
    with graph_sandbox.lock:
        graph_sandbox.devices[device_id]["displayName"] = "first"
    assert len(poller.poll()) == 1  # the events never reached the queue: no commit
    assert [change["id"] for change in round_of(poller)] == [device_id]


def test_state_file_restart_no_replay_no_loss_mode_0600_no_secret(graph_sandbox, graph_args, tmp_path):
    state_file = str(tmp_path / "graph.json")
    poller = graph_poller(graph_args, state_file=state_file)
    round_of(poller)
    device_id = next(iter(graph_sandbox.devices))
    with graph_sandbox.lock:
        graph_sandbox.devices[device_id]["displayName"] = "before the stop"
    assert len(round_of(poller)) == 1
    with graph_sandbox.lock:  # while the source is stopped
        graph_sandbox.devices[device_id]["displayName"] = "while stopped"
    restarted = graph_poller(graph_args, state_file=state_file)
    changes = round_of(restarted)
    assert [(change["id"], change["previous"]) for change in changes] == [(device_id, {"displayName": "before the stop"})]
    assert round_of(restarted) == []
    assert stat.S_IMODE(os.stat(state_file).st_mode) == 0o600
    text = open(state_file).read()
    assert graph_sandbox.client_secret not in text
    assert not any(token in text for token in graph_sandbox.issued_tokens())
    assert json.loads(text)["scope"]["endpoint"].endswith("/v1.0")


def test_a_state_file_of_other_properties_starts_over(graph_sandbox, graph_args, tmp_path):
    state_file = str(tmp_path / "graph.json")
    round_of(graph_poller(graph_args, state_file=state_file))
    poller = graph_poller(graph_args, state_file=state_file, properties=["displayName"])
    assert poller.baseline


def test_a_state_file_that_is_no_state_is_refused(graph_args, tmp_path):
    state_file = tmp_path / "graph.json"
    state_file.write_text("[1, 2]")
    with pytest.raises(InputError, match="not a state file"):
        graph_poller(graph_args, state_file=str(state_file))


def test_a_state_file_in_a_missing_folder_is_refused(graph_args, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        GraphDeviceChanges(dict(graph_args, state_file=str(tmp_path / "none" / "graph.json")))


def test_feishu_update_lists_changed_fields_never_version(feishu_sandbox, feishu_args, feishu_client):
    poller = feishu_poller(feishu_args)
    round_of(poller)
    record = dict(next(iter(feishu_sandbox.records.values())))
    status = 2 if record.get("device_status") == 1 else 1
    feishu_client.update_record(record["device_record_id"], record["version"], record.get("device_ownership", 0), status)
    changes = round_of(poller)
    assert len(changes) == 1 and "device_status" in changes[0]["changed"] and "version" not in changes[0]["changed"]
    assert changes[0]["device"]["device_status"] == {1: "trusted", 2: "untrusted"}[status]
    assert changes[0]["previous"]["device_status"] == {1: "untrusted", 2: "trusted"}[status]
    assert changes[0]["device"]["version"] != record["version"]


def test_feishu_version_bump_without_a_change_emits_nothing(feishu_sandbox, feishu_args):
    poller = feishu_poller(feishu_args)
    round_of(poller)
    record_id = next(iter(feishu_sandbox.records))
    with feishu_sandbox.lock:
        feishu_sandbox.records[record_id]["version"] = str(int(feishu_sandbox.records[record_id]["version"]) + 1)
    assert round_of(poller) == []


def test_feishu_same_version_is_not_compared(feishu_sandbox, feishu_args):
    poller = feishu_poller(feishu_args)
    round_of(poller)
    record_id = next(iter(feishu_sandbox.records))
    with feishu_sandbox.lock:  # no version bump: Feishu never changes a record without one
        feishu_sandbox.records[record_id]["device_name"] = "renamed"
    assert round_of(poller) == []


def test_feishu_pass_with_a_failed_page_emits_no_removed(feishu_sandbox, feishu_args, feishu_client):
    feishu_sandbox.reset(records=150)  # two pages
    poller = feishu_poller(feishu_args)
    round_of(poller)
    gone = list(feishu_sandbox.records)[-1]
    first = next(iter(feishu_sandbox.records.values()))
    with feishu_sandbox.lock:
        del feishu_sandbox.records[gone]
    feishu_client.update_record(first["device_record_id"], first["version"], first.get("device_ownership", 0),
                                2 if first.get("device_status") == 1 else 1)
    # the first page answers, the second fails beyond the retries
    feishu_sandbox.faults.add("status", match={"method": "GET", "path_regex": "device_records$"}, status=500,
                              skip=1, times=2)
    # what the pass read counts (the first page's update), a record it did not see is not gone
    assert [(change["change"], change["id"]) for change in round_of(poller)] == [("updated", first["device_record_id"])]
    assert poller.round_info["complete"] is False and "500" in poller.round_info["error"]
    assert [(change["change"], change["id"]) for change in round_of(poller)] == [("removed", gone)]


def test_tracker_merges_minimal_entries_over_the_snapshot():
    tracker = ChangeTracker("msgraph", ["accountEnabled", "isCompliant"], identity=("id", "deviceId", "displayName"),
                            snapshot={"a": {"id": "a", "deviceId": "d", "displayName": "A", "accountEnabled": False,
                                            "isCompliant": True}})
    events, snapshot = tracker.observe([{"id": "a", "accountEnabled": True}])
    change = events[0]["fleetguard"]
    assert change["changed"] == ["accountEnabled"] and change["previous"] == {"accountEnabled": False}
    assert change["device"] == {"id": "a", "deviceId": "d", "displayName": "A", "accountEnabled": True, "isCompliant": True}
    assert tracker.snapshot["a"]["accountEnabled"] is False  # nothing changes before commit
    full = dict(snapshot["a"])
    assert tracker.observe([full])[0][0]["fleetguard"]["changed"] == ["accountEnabled"]


def test_a_device_seen_twice_in_a_round_gives_one_event_against_the_snapshot_before_it():
    tracker = ChangeTracker("msgraph", ["accountEnabled", "isCompliant"], identity=("id",),
                            snapshot={"a": {"id": "a", "accountEnabled": False, "isCompliant": True}})
    events, dummy = tracker.observe([{"id": "a", "accountEnabled": True}, {"id": "a", "isCompliant": False}])
    assert [(event["fleetguard"]["changed"], event["fleetguard"]["previous"]) for event in events] == [
        (["accountEnabled", "isCompliant"], {"accountEnabled": False, "isCompliant": True})]
    # a device new in the round and removed in it was never known: no event at all
    assert tracker.observe([{"id": "b", "accountEnabled": True}], removed=["b"])[0] == []


def test_a_device_removed_and_listed_again_later_in_the_round_is_back():
    from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_delta import DeltaRound, GraphDeltaReader

    result = DeltaRound(full=False)
    GraphDeltaReader._take(result, {"value": [{"id": "A", "@removed": {"reason": "changed"}}, {"id": "a", "displayName": "x"},
                                              {"id": "b"}, {"id": "b", "@removed": {"reason": "deleted"}}],
                                    "@odata.deltaLink": "/devices/delta?$deltatoken=t"})
    assert result.removed == ["b"] and [entry["id"] for entry in result.entries] == ["a", "b"]
