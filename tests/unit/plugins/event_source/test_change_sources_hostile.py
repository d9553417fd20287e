"""Hostile tests of the change sources of extensions/eda (msgraph_device_changes, feishu_device_record_changes):
what Graph, Feishu, a state file or an operator may hand them that the happy path never does. Against the emulators
on 127.0.0.1 (crafted answers through their `answer` fault), nothing mocked inside the code."""

import asyncio
import json
import logging
import os
import stat
import threading

import pytest
import requests

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import FleetguardError, InputError
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_delta import GraphDeviceChanges
from ansible_collections.fleetguard.devices.tests.unit.plugins.event_source.source_harness import (
    DELTA, collect, delta_calls, feishu_poller, graph_poller, round_of, source_main)

RECORDS = "device_records$"


def list_calls(feishu_sandbox):
    return [entry for entry in feishu_sandbox.wire.entries()
            if entry["method"] == "GET" and entry["path"].endswith("device_records")]


def latest_link(graph_sandbox, poller):
    """A delta link of "now" with the poller's $select, straight from the emulator."""
    answer = requests.get("%s/v1.0/devices/delta" % graph_sandbox.url, timeout=5,
                          params={"$deltatoken": "latest", "$select": poller.reader.select},
                          headers={"Authorization": "Bearer " + graph_sandbox.issue_token()})
    assert answer.status_code == 200, answer.text
    return answer.json()["@odata.deltaLink"]


def answer_next_delta_call(graph_sandbox, body, times=1):
    """The next delta call(s) get `body` (200) instead of the emulator's own answer."""
    graph_sandbox.faults.add("answer", match={"method": "GET", "path_regex": DELTA + "$"}, times=times, body=body)


def removed_entry(object_id, reason="deleted"):
    return {"@odata.type": "#microsoft.graph.device", "id": object_id, "@removed": {"reason": reason}}


def poll_in_thread(poller, seconds):
    """poller.poll() in a thread: (events or the exception, True when it was still running after `seconds`)."""
    outcome = []

    def run():
        try:
            outcome.append(poller.poll())
        except BaseException as error:  # noqa: B036 (hand everything to the test)
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    return (outcome[0] if outcome else None), thread.is_alive()


# --- Graph delta semantics ---------------------------------------------------------------------------------


def test_a_device_reported_removed_twice_in_one_round_gives_one_removed_event(graph_sandbox, graph_args):
    """Graph may list the same object more than once in a round (delta-query overview: "the same resource may appear
    more than once"). Two `@removed` entries for one device must give one `removed` event; today the tracker pops
    the device from the snapshot twice (KeyError), the round fails, and since the same delta link is read again at
    every poll the source never gets past that round again: every later change is lost."""
    poller = graph_poller(graph_args)
    round_of(poller)
    device = next(iter(graph_sandbox.devices.values()))
    with graph_sandbox.lock:
        graph_sandbox._forget(device)
    answer_next_delta_call(graph_sandbox, {"value": [removed_entry(device["id"]), removed_entry(device["id"])],
                                           "@odata.deltaLink": latest_link(graph_sandbox, poller)})
    changes = round_of(poller)
    assert [(change["change"], change["id"]) for change in changes] == [("removed", device["id"])]
    assert device["id"] not in poller.tracker.snapshot


def test_a_device_updated_then_removed_in_one_round_ends_removed(graph_sandbox, graph_args):
    """A round whose pages carry a device's update and then its `@removed` entry (it was deleted while the round was
    paged) means the device is gone: a `removed` event and out of the snapshot. Today the removal is dropped
    because the id was "seen" in the same round: the rulebook never hears that the device is gone, and the snapshot
    keeps a ghost that no later delta round will ever remove."""
    poller = graph_poller(graph_args)
    round_of(poller)
    device = next(iter(graph_sandbox.devices.values()))
    with graph_sandbox.lock:
        graph_sandbox._forget(device)
    answer_next_delta_call(graph_sandbox, {
        "value": [{"id": device["id"], "displayName": "renamed before deletion"}, removed_entry(device["id"])],
        "@odata.deltaLink": latest_link(graph_sandbox, poller)})
    changes = round_of(poller)
    assert changes and (changes[-1]["change"], changes[-1]["id"]) == ("removed", device["id"])
    assert device["id"] not in poller.tracker.snapshot


# --- links to other hosts ----------------------------------------------------------------------------------


def test_a_next_link_to_another_host_never_gets_the_bearer_token(graph_sandbox, graph_args, scripted_server):
    """An @odata.nextLink that points to another host than graph_endpoint (a hostile or broken proxy, a poisoned
    answer) must not be followed with `Authorization: Bearer <token>`: the round should fail instead. The transport
    already refuses redirects for this reason; the delta reader follows any absolute link as is."""
    poller = graph_poller(graph_args)
    round_of(poller)
    stolen = scripted_server.url + "/v1.0/devices/delta?$deltatoken=stolen"
    scripted_server.script = [(200, {}, {"value": [], "@odata.deltaLink": stolen})]
    next_link = scripted_server.url + "/v1.0/devices/delta?$skiptoken=x"
    answer_next_delta_call(graph_sandbox, {"value": [], "@odata.nextLink": next_link})
    try:
        poller.poll()
    except FleetguardError:
        pass
    leaked = [headers for dummy, dummy, headers, dummy in scripted_server.requests
              if any(name.lower() == "authorization" for name in headers)]
    assert leaked == []


def test_a_delta_link_to_another_host_is_never_called_with_the_bearer_token(
        graph_sandbox, graph_args, scripted_server):
    """An @odata.deltaLink on another host would be saved (in memory and in the state file) and called at every
    later poll with the bearer token. It must be refused when read, and never called."""
    poller = graph_poller(graph_args)
    round_of(poller)
    again = scripted_server.url + "/v1.0/devices/delta?$deltatoken=again"
    scripted_server.script = [(200, {}, {"value": [], "@odata.deltaLink": again})] * 3
    stolen = scripted_server.url + "/v1.0/devices/delta?$deltatoken=stolen"
    answer_next_delta_call(graph_sandbox, {"value": [], "@odata.deltaLink": stolen})
    for dummy in range(2):
        try:
            round_of(poller)
        except FleetguardError:
            pass
    leaked = [headers for dummy, dummy, headers, dummy in scripted_server.requests
              if any(name.lower() == "authorization" for name in headers)]
    assert leaked == []


# --- answers that never end -----------------------------------------------------------------------------------


def test_a_next_link_that_points_to_itself_does_not_loop_forever(graph_sandbox, graph_args):
    """A page whose @odata.nextLink is the link just read (a service bug) must end the round with an error, not
    page the same link for ever in the executor thread (the source then never polls, never logs, and spends the
    tenant's read quota). Here the emulator answers the same empty page 60 times: the round should give up at the
    first repeat."""
    poller = graph_poller(graph_args)
    round_of(poller)
    loop = graph_sandbox.url + "/v1.0/devices/delta?$skiptoken=loop"
    answer_next_delta_call(graph_sandbox, {"value": [], "@odata.nextLink": loop}, times=60)
    before = len(graph_sandbox.wire.entries())
    outcome, running = poll_in_thread(poller, 30)
    assert not running
    assert len(delta_calls(graph_sandbox, since=before)) <= 3, "the same nextLink was followed again and again"


def test_a_feishu_page_token_that_repeats_does_not_loop_forever(feishu_sandbox, feishu_args):
    """A list page that hands back the page_token just used (has_more true) must end the pass (incomplete), not
    list the same page for ever."""
    feishu_sandbox.reset(records=150)
    poller = feishu_poller(feishu_args)
    round_of(poller)
    before = len(list_calls(feishu_sandbox))
    feishu_sandbox.faults.add("answer", match={"method": "GET", "path_regex": RECORDS}, times=60, body={
        "code": 0, "msg": "success", "data": {"items": [], "has_more": True, "page_token": "same"}})
    outcome, running = poll_in_thread(poller, 30)
    assert not running
    assert len(list_calls(feishu_sandbox)) - before <= 3, "the same page_token was listed again and again"


def test_a_feishu_page_with_has_more_but_no_page_token_emits_no_removed(feishu_sandbox, feishu_args):
    """Feishu says there is more (`has_more: true`) but gives no page_token: the pass cannot go on and is not
    complete, so it must not report every record it did not reach as `removed`. Today list_page turns the missing
    token into "last page" and the pass counts as complete: the whole fleet but the first page is "removed"."""
    feishu_sandbox.reset(records=150)
    poller = feishu_poller(feishu_args)
    round_of(poller)
    with feishu_sandbox.lock:
        first_page = [dict(record) for record in list(feishu_sandbox.records.values())[:100]]
    feishu_sandbox.faults.add("answer", match={"method": "GET", "path_regex": RECORDS}, times=1, body={
        "code": 0, "msg": "success", "data": {"items": first_page, "has_more": True}})
    changes = round_of(poller)
    assert [change for change in changes if change["change"] == "removed"] == []


# --- state files -----------------------------------------------------------------------------------------------


def test_a_graph_state_file_of_another_tenant_on_the_same_endpoint_is_not_used(graph_sandbox, graph_args,
                                                                               tmp_path, monkeypatch):
    """Every tenant is behind https://graph.microsoft.com/v1.0: a state file saved for tenant A and reused for
    tenant B (the same state_dir in a second activation) must start over, as a file of another endpoint does. Today
    the scope is endpoint + properties only, so B's first rounds are compared with A's snapshot (and A's delta link
    is sent with B's token): `removed` for A's fleet, `added` for B's, or silence where B really changed."""
    state_file = str(tmp_path / "graph.json")
    round_of(graph_poller(graph_args, state_file=state_file))
    other = "11111111-2222-3333-4444-555555555555"
    graph_sandbox.tenant_id = other
    monkeypatch.setenv("AZURE_TENANT_ID", other)
    poller = graph_poller(graph_args, state_file=state_file)
    assert poller.baseline, "the state of another tenant was taken as this tenant's"


def test_a_feishu_state_file_of_another_app_on_the_same_base_url_is_not_used(feishu_sandbox, feishu_args, tmp_path,
                                                                             monkeypatch):
    """Every Feishu tenant is behind https://open.feishu.cn: the state of app A (tenant A) must not be taken as app
    B's. Today the scope is base_url + properties: B's first complete pass reports A's records `removed` and its own
    `added`."""
    state_file = str(tmp_path / "feishu.json")
    round_of(feishu_poller(feishu_args, state_file=state_file))
    feishu_sandbox.app_id = "cli_another_tenant_app"
    monkeypatch.setenv("FEISHU_APP_ID", feishu_sandbox.app_id)
    poller = feishu_poller(feishu_args, state_file=state_file)
    assert poller.baseline, "the state of another app was taken as this app's"


def test_a_state_file_of_the_other_source_is_refused_not_overwritten(graph_sandbox, graph_args, feishu_sandbox,
                                                                     feishu_args, tmp_path):
    """Two sources given the same state_file (a copy-paste in a rulebook that runs both) clobber each other's state
    at every round, and after a restart one of them silently starts from "now" (changes made while stopped: lost).
    A file that holds another source's state must be refused at start-up ("is the state of
    fleetguard.devices.msgraph_device_changes"), never overwritten."""
    state_file = str(tmp_path / "shared.json")
    round_of(graph_poller(graph_args, state_file=state_file))
    saved = open(state_file).read()
    try:
        poller = feishu_poller(feishu_args, state_file=state_file)
        round_of(poller)
    except InputError:
        pass
    assert open(state_file).read() == saved, "the Graph source's state was overwritten by the Feishu source"


@pytest.mark.parametrize("damage", ["snapshot entry", "cursor"])
def test_a_state_file_with_wrong_types_inside_is_refused_at_start_up(graph_sandbox, graph_args, tmp_path, damage):
    """A state file that parses but holds the wrong types (a snapshot entry that is not an object, a cursor that is
    not a link: a hand edit, another tool's file) must be refused at start-up like a file that is not JSON. Today it
    is taken, and every round then fails (TypeError / AttributeError logged at each poll) for ever: the source runs
    but never reports anything again."""
    state_file = str(tmp_path / "graph.json")
    round_of(graph_poller(graph_args, state_file=state_file))
    state = json.load(open(state_file))
    device_id = next(iter(graph_sandbox.devices))
    if damage == "snapshot entry":
        state["snapshot"][device_id] = 5
    else:
        state["cursor"] = 5
    with open(state_file, "w") as handle:
        json.dump(state, handle)
    try:
        poller = graph_poller(graph_args, state_file=state_file)
    except InputError:
        return
    with graph_sandbox.lock:
        graph_sandbox.devices[device_id]["displayName"] = "changed after a damaged state"
    # not refused: then the source must at least keep working
    assert any(change["id"] == device_id for change in round_of(poller))


# --- arguments -------------------------------------------------------------------------------------------------


def test_a_property_named_twice_is_listed_once_in_changed(graph_sandbox, graph_args):
    """`properties: [accountEnabled, accountEnabled]` must track accountEnabled once: today `changed` says
    [accountEnabled, accountEnabled] (and $select names it twice)."""
    poller = graph_poller(graph_args, properties=["accountEnabled", "accountEnabled"])
    round_of(poller)
    device_id = next(iter(graph_sandbox.devices))
    with graph_sandbox.lock:
        graph_sandbox.devices[device_id]["accountEnabled"] = not graph_sandbox.devices[device_id]["accountEnabled"]
    assert [change["changed"] for change in round_of(poller)] == [["accountEnabled"]]


def test_a_property_in_another_case_is_tracked_or_refused(graph_sandbox, graph_args):
    """Graph's $select takes `AccountEnabled` and answers `accountEnabled`: the source then compares a key that
    never comes (always None) and never reports a change of it: a rule on it silently never fires. It must either
    refuse the name at start-up or track the property Graph answers."""
    try:
        poller = graph_poller(graph_args, properties=["AccountEnabled"])
    except InputError:
        return
    round_of(poller)
    device_id = next(iter(graph_sandbox.devices))
    with graph_sandbox.lock:
        graph_sandbox.devices[device_id]["accountEnabled"] = not graph_sandbox.devices[device_id]["accountEnabled"]
    assert [change["id"] for change in round_of(poller)] == [device_id]


def test_an_unknown_graph_property_is_refused_at_start_up_before_any_delta_call(graph_sandbox, graph_args):
    """`properties: [acountEnabled]` (a typo) is a bad argument: the spec says bad arguments end the source at
    start-up before any delta call. Today the source starts and Graph refuses every round with 400 for ever."""
    events = asyncio.run(collect(source_main("msgraph_device_changes"), dict(graph_args, properties=["acountEnabled"]),
                                 1, 8))
    assert events and isinstance(events[-1], FleetguardError), events
    assert "acountEnabled" in str(events[-1])
    assert delta_calls(graph_sandbox) == []


def test_feishu_empty_properties_means_every_field_or_is_refused(feishu_sandbox, feishu_args, feishu_client):
    """`properties: []` for Feishu makes the tracker compare no field at all (no `updated` event ever) while its
    state scope says "every field" (None), the same as no `properties`: a state written by one is taken by the
    other. It must mean every field (as Graph's [] means its default) or be refused."""
    try:
        poller = feishu_poller(feishu_args, properties=[])
    except InputError:
        return
    round_of(poller)
    record = dict(next(iter(feishu_sandbox.records.values())))
    feishu_client.update_record(record["device_record_id"], record["version"], record.get("device_ownership", 0),
                                2 if record.get("device_status") == 1 else 1)
    changes = round_of(poller)
    assert [("device_status" in change["changed"]) for change in changes] == [True]


# --- logging ---------------------------------------------------------------------------------------------------


def test_no_log_line_at_any_level_carries_a_delta_or_skip_token(graph_sandbox, graph_args, caplog):
    """ansible-rulebook -vv configures the root logger at DEBUG: every record of the process is printed, urllib3's
    request lines included, which quote the delta link's query (`$deltatoken=...`, `$skiptoken=...`). The module
    comments say links carry state tokens and errors name the path only; the source must keep them out of log
    lines too (a filter on urllib3.connectionpool, or raising its level while polling)."""
    graph_sandbox.delta_page_size = 25  # 60 devices: three skiptoken pages
    caplog.set_level(logging.DEBUG)
    poller = graph_poller(graph_args)
    round_of(poller)
    round_of(poller)
    tokens = [poller.cursor.split("$deltatoken=", 1)[1]]
    for entry in delta_calls(graph_sandbox):
        for name, value in entry["query"].items():
            if name.lower().lstrip("$") in ("deltatoken", "skiptoken"):
                tokens += value if isinstance(value, list) else [value]
    assert len(tokens) >= 3
    secrets = [graph_sandbox.client_secret] + list(graph_sandbox.issued_tokens())
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert [secret for secret in secrets if secret in text] == []
    assert [token for token in tokens if token in text] == []


def test_a_feishu_pass_that_keeps_failing_is_logged_as_a_warning(feishu_sandbox, feishu_args, caplog):
    """A Graph round that fails is logged at WARNING; a Feishu pass whose list call fails (after the retries: 403,
    permission revoked) is logged only inside the INFO summary ("0 event(s) (... error=...)"), so at ansible-rulebook's
    default verbosity an operator sees nothing while the source reads nothing for days."""
    from ansible_collections.fleetguard.devices.plugins.plugin_utils.change_source import _round

    caplog.set_level(logging.INFO)
    poller = feishu_poller(feishu_args)
    queue = asyncio.Queue()
    asyncio.run(_round(queue, poller))  # the baseline
    feishu_sandbox.faults.add("status", match={"method": "GET", "path_regex": RECORDS}, status=500, times=50)
    caplog.clear()
    asyncio.run(_round(queue, poller))
    assert poller.round_info["complete"] is False
    warned = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert warned, [record.getMessage() for record in caplog.records]


# --- credentials at start-up -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["msgraph_device_changes", "feishu_device_record_changes"])
def test_a_refused_ready_token_ends_the_source(name, graph_sandbox, feishu_sandbox, monkeypatch):
    """With a ready token (MSGRAPH_ACCESS_TOKEN / FEISHU_TENANT_ACCESS_TOKEN) nothing is checked at start-up: a
    wrong or expired token starts the source, and every round then fails with 401 for ever (a WARNING per poll),
    while refused client credentials end it at once. The spec: bad credentials are refused at start-up and the
    source ends (ansible-rulebook exits non-zero). The first call's 401 (the token cannot be renewed) must end it."""
    if name == "msgraph_device_changes":
        monkeypatch.setenv("MSGRAPH_ENDPOINT", graph_sandbox.url)
        monkeypatch.setenv("MSGRAPH_ACCESS_TOKEN", "not-a-token")
        args = dict(interval=5, max_retries=1, timeout=5)
    else:
        monkeypatch.setenv("FEISHU_BASE_URL", feishu_sandbox.url)
        monkeypatch.setenv("FEISHU_TENANT_ACCESS_TOKEN", "t-not-a-token")
        args = dict(interval=30, max_retries=1, timeout=5)
    events = asyncio.run(collect(source_main(name), args, 1, 8))
    assert events and isinstance(events[-1], FleetguardError), events
    assert "not-a-token" not in str(events[-1])


# --- state file in odd places ----------------------------------------------------------------------------------


def test_a_state_file_that_is_a_symlink_keeps_writing_to_its_target(graph_sandbox, graph_args, tmp_path):
    """An operator points state_file at a persistent volume through a symlink (/var/lib/eda/x.json ->
    /persistent/x.json). os.replace() replaces the link itself with a regular file: from the second round on the
    volume's copy is never updated, and after the activation's container is recreated the source resumes from the
    first state ever saved (a replay of everything since, or a resync). It must write through the link (or refuse
    a link at start-up)."""
    volume = tmp_path / "volume"
    volume.mkdir()
    target = volume / "graph.json"
    link = tmp_path / "graph.json"
    link.symlink_to(target)
    try:
        poller = graph_poller(graph_args, state_file=str(link))
    except InputError:
        return
    round_of(poller)
    device_id = next(iter(graph_sandbox.devices))
    with graph_sandbox.lock:
        graph_sandbox.devices[device_id]["displayName"] = "seen in round two"
    round_of(poller)
    assert link.is_symlink(), "the link was replaced by a regular file"
    assert json.loads(target.read_text())["snapshot"][device_id]["displayName"] == "seen in round two"


# --- what held -------------------------------------------------------------------------------------------------


class TestHeld:
    def test_a_failed_state_write_keeps_the_old_state_and_leaves_no_temporary(self, graph_sandbox, graph_args,
                                                                              tmp_path):
        """A write that fails half-way (here: the file size limit, as a full disk would) leaves the last state whole
        and no temporary file; the error is an OSError, which the poll loop logs."""
        import resource
        import signal

        state_file = tmp_path / "graph.json"
        poller = graph_poller(graph_args, state_file=str(state_file))
        round_of(poller)
        saved = state_file.read_text()
        device_id = next(iter(graph_sandbox.devices))
        with graph_sandbox.lock:
            graph_sandbox.devices[device_id]["displayName"] = "x" * 200
        poller.poll()
        limits = resource.getrlimit(resource.RLIMIT_FSIZE)
        handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (len(saved) // 2, limits[1]))
        try:
            with pytest.raises(OSError):
                poller.commit()
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, limits)
            signal.signal(signal.SIGXFSZ, handler)
        assert state_file.read_text() == saved
        assert [name for name in os.listdir(tmp_path) if "graph.json" in name] == ["graph.json"]
        assert stat.S_IMODE(os.stat(state_file).st_mode) == 0o600

    def test_a_token_endpoint_down_at_start_is_waited_out(self, graph_sandbox, graph_args):
        """503 from the token endpoint at start-up (beyond the retries) is waited out, not fatal."""
        graph_sandbox.faults.add("status", match={"path_regex": "oauth2/v2.0/token"}, status=503, times=2)
        events = asyncio.run(collect(source_main("msgraph_device_changes"), dict(graph_args, initial="emit"),
                                     len(graph_sandbox.devices), 20))
        assert len(events) == len(graph_sandbox.devices)
        assert {event["fleetguard"]["change"] for event in events} == {"added"}

    def test_an_error_that_is_not_the_collections_does_not_end_the_source(self, graph_sandbox, graph_args):
        """A page the reader cannot use (a 200 of HTML) fails the round; the source polls again and reports the
        change then."""
        device_id = next(iter(graph_sandbox.devices))
        poller = graph_poller(graph_args)
        round_of(poller)
        graph_sandbox.faults.add("answer", match={"path_regex": DELTA}, times=1, body="<html>", content_type="text/html")
        with graph_sandbox.lock:
            graph_sandbox.devices[device_id]["operatingSystem"] = "Plan9"
        with pytest.raises(FleetguardError):
            poller.poll()
        assert [change["changed"] for change in round_of(poller)] == [["operatingSystem"]]

    def test_removed_with_reason_changed_and_upper_case_ids(self, graph_sandbox, graph_args):
        """`@removed` with reason `changed` removes too, and an id in upper case names the same device."""
        poller = graph_poller(graph_args)
        round_of(poller)
        device = next(iter(graph_sandbox.devices.values()))
        with graph_sandbox.lock:
            graph_sandbox._forget(device)
        answer_next_delta_call(graph_sandbox, {"value": [removed_entry(device["id"].upper(), "changed")],
                                               "@odata.deltaLink": latest_link(graph_sandbox, poller)})
        assert [(change["change"], change["id"]) for change in round_of(poller)] == [("removed", device["id"])]

    def test_a_page_without_any_link_fails_the_round_and_nothing_is_committed(self, graph_sandbox, graph_args):
        poller = graph_poller(graph_args)
        round_of(poller)
        cursor = poller.cursor
        answer_next_delta_call(graph_sandbox, {"value": []})
        with pytest.raises(FleetguardError):
            poller.poll()
        assert poller.cursor == cursor

    @pytest.mark.parametrize("value, refused", [
        ("5", False), (5.0, False), (5.5, True), (True, True), (-1, True), (10 ** 30, False), ("five", True)])
    def test_interval_types(self, graph_args, value, refused):
        if refused:
            with pytest.raises(InputError, match="interval"):
                GraphDeviceChanges(dict(graph_args, interval=value))
        else:
            assert GraphDeviceChanges(dict(graph_args, interval=value)).interval == int(value)

    def test_feishu_versions_backwards_and_as_numbers_compare_by_value(self, feishu_sandbox, feishu_args):
        """A version that goes backwards or turns from text into a number is compared field by field: no event
        unless a field really changed."""
        poller = feishu_poller(feishu_args)
        round_of(poller)
        record_id = next(iter(feishu_sandbox.records))
        with feishu_sandbox.lock:
            feishu_sandbox.records[record_id]["version"] = int(feishu_sandbox.records[record_id]["version"]) - 1
        assert round_of(poller) == []
