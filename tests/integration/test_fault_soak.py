"""Fault soak: the quarantine role on 1,000 Feishu records and 1,000 Graph devices while about one request in
five meets a fault (429 with and without headers, 5xx, HTML pages, resets before and after the write is
applied, answers slower than the timeout, tokens that expire mid-run, and another writer editing 5 % of the
devices), then twice more without faults.

What is proved, from the emulators' state and wire logs: after run 1 every device is done or named with its
reason; no change is ever applied twice; nothing outside the list is written; run 2 converges and run 3
changes nothing. The figures (faults by kind, retries, uncertain outcomes, writes, times) are printed: run with
`pytest -s` to see them.

Sizing: the Feishu update quota is 10 per second per app (the client paces itself, whatever the emulator
allows), so 1,000 records take about 100 s; the Graph run goes alongside in its own ansible-playbook. A Graph
write whose answer was lost and that never landed is settled by re-reads for max(30 s, 3 x timeout) before it
is sent again, so every such fault is placed in the first round of writes, where one 30 s settle covers them
all. The whole test takes about two minutes; it runs once, on the Python 3.11 leg of `make integration`.
"""

import collections
import copy
import json
import random
import threading
import time
import warnings

import pytest

from sandbox.feishu import FeishuSandbox
from sandbox.msgraph import GraphSandbox

pytestmark = pytest.mark.once

LISTED = 1000
REASON = "INC-SOAK-1"
TAG = "quarantine:" + REASON
TIMEOUT = 2  # seconds; slow answers below take 3
FEISHU_WRITE_TASK = "Mark the Feishu device records untrusted"
GRAPH_WRITE_TASK = "Disable the Graph devices and write the quarantine tag"
FEISHU_PUT = {"method": "PUT", "path_regex": r"/device_records/\d+$"}
GRAPH_PATCH_PART = {"method": "PATCH", "batch_item": True}
GRAPH_GET_PART = {"method": "GET", "batch_item": True}
GRAPH_BATCH_CALL = {"method": "POST", "path_regex": r"/\$batch$", "batch_item": False}
FEISHU_GET = {"method": "GET"}
HTML_PAGE = "<html>\r\n<head><title>{0}</title></head>\r\n<body><center><h1>{0}</h1></center></body>\r\n</html>\r\n"
OTHER_WRITER = "edited by another writer"

# (how many, rule, where it may fire: the range of `skip`). One rule per fault, each firing once, spread over the
# run. Feishu: about 1,000 PUTs, 210 faults on them (21 %).
FEISHU_FAULTS = [
    (8, dict(action="status", status=429, reset=1, match=FEISHU_PUT), 900),
    (12, dict(action="status", status=429, reset=0, match=FEISHU_PUT), 900),
    (20, dict(action="answer", status=429, body={"code": 99991400, "msg": "request trigger frequency limit"},
              match=FEISHU_PUT), 900),
    (10, dict(action="status", status=400, code=99991400, msg="request trigger frequency limit", match=FEISHU_PUT), 900),
    (20, dict(action="status", status=500, match=FEISHU_PUT), 900),
    (10, dict(action="status", status=502, match=FEISHU_PUT), 900),
    (10, dict(action="status", status=503, match=FEISHU_PUT), 900),
    (10, dict(action="status", status=504, match=FEISHU_PUT), 900),
    (5, dict(action="answer", status=200, body=HTML_PAGE.format("Maintenance"), content_type="text/html",
             match=FEISHU_PUT), 900),
    (20, dict(action="reset", match=FEISHU_PUT), 900),
    (20, dict(action="reset_after_apply", match=FEISHU_PUT), 900),
    (10, dict(action="latency", seconds=TIMEOUT + 1, match=FEISHU_PUT), 900),
    (5, dict(action="expire_tokens", match=FEISHU_PUT), 900),
    (50, dict(action="concurrent_edit", fields={"device_ownership": 1}, match=FEISHU_PUT), 900),
    # Reads: list pages and the read-back after each write.
    (5, dict(action="status", status=429, reset=1, match=FEISHU_GET), 600),
    (5, dict(action="status", status=503, match=FEISHU_GET), 600),
    (5, dict(action="reset", match=FEISHU_GET), 600),
]
# Graph: 1,000 PATCH parts in 50 $batch calls; 150 faults on them and on the calls, 30 on reads, and 50 devices
# edited by another writer (about 23 % in all). Every lost answer falls in the first round of writes.
GRAPH_FAULTS = [
    (40, dict(action="status", status=429, retry_after=1, match=GRAPH_PATCH_PART), 800),
    # Without Retry-After; Graph names such a throttle activityLimitReached (the figures tell the two apart by it).
    (30, dict(action="status", status=429, retry_after=None, code="activityLimitReached", match=GRAPH_PATCH_PART), 800),
    (15, dict(action="status", status=500, match=GRAPH_PATCH_PART), 800),
    (15, dict(action="status", status=503, match=GRAPH_PATCH_PART), 800),
    (20, dict(action="answer", status=502, body=HTML_PAGE.format("502 Bad Gateway"), content_type="text/html",
              match=GRAPH_PATCH_PART), 800),
    (3, dict(action="reset", match=GRAPH_PATCH_PART), 600),
    (3, dict(action="reset_after_apply", match=GRAPH_PATCH_PART), 600),
    (5, dict(action="latency", seconds=TIMEOUT + 1, match=GRAPH_PATCH_PART), 600),
    (2, dict(action="expire_tokens", match=GRAPH_PATCH_PART), 800),
    (2, dict(action="answer", status=503, body=HTML_PAGE.format("503 Service Unavailable"), content_type="text/html",
             match=GRAPH_BATCH_CALL), 100),
    (2, dict(action="expire_tokens", match=GRAPH_BATCH_CALL), 100),
    (20, dict(action="status", status=429, retry_after=1, match=GRAPH_GET_PART), 1800),
    (10, dict(action="status", status=503, match=GRAPH_GET_PART), 1800),
]
GRAPH_CONCURRENT_EDITS = 50


class SoakFigures(UserWarning):
    """The soak's figures. Printed for `pytest -s`, and warned too: under pytest-xdist (`make integration`) the
    output of a worker is not shown, its warnings are (in the warnings summary)."""


@pytest.fixture
def soak_feishu():
    """1,100 records (1,000 listed, 100 never to be touched); the emulator's own limits scaled up: the point is
    faults, not pacing (the client keeps to the published 10 per second anyway)."""
    sandbox = FeishuSandbox(records=LISTED + 100, seed=21, rate_limit_scale=5).start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def soak_graph():
    """2,000 devices, of which 1,100 run Windows (an app-only caller may disable only those): the first 1,000
    Windows devices are listed, the other 1,000 devices must never be touched."""
    sandbox = GraphSandbox(devices=2000, seed=23, write_limit_scale=5).start()
    yield sandbox
    sandbox.stop()


def add_faults(sandbox, table, rng):
    for count, rule, spread in table:
        for dummy in range(count):
            sandbox.faults.add(times=1, skip=rng.randint(0, spread), **copy.deepcopy(rule))


def role_task():
    return "- name: Quarantine\n  ansible.builtin.include_role:\n    name: fleetguard.devices.quarantine\n"


def feishu_vars(feishu, ids):
    return dict(quarantine_reason=REASON, quarantine_feishu_device_record_ids=ids,
                quarantine_feishu_connection=dict(base_url=feishu.url, app_id=feishu.app_id,
                                                  app_secret=feishu.app_secret, timeout=TIMEOUT))


def graph_vars(graph, ids):
    return dict(quarantine_reason=REASON, quarantine_msgraph_ids=ids,
                quarantine_msgraph_connection=dict(graph_endpoint=graph.url, authority_host=graph.url,
                                                   tenant_id=graph.tenant_id, client_id=graph.client_id,
                                                   client_secret=graph.client_secret, timeout=TIMEOUT))


def run_both(playbook, tmp_path, label, feishu_play_vars, graph_play_vars):
    """The Feishu and the Graph quarantine, each in its own ansible-playbook, at the same time:
    {"feishu": (run, seconds), "graph": (run, seconds)}."""
    done = {}

    def one(api, play_vars):
        runner = type(playbook)(tmp_path / ("%s-%s" % (label, api)), dict(playbook.env))
        runner.tmp_path.mkdir()
        started = time.monotonic()
        done[api] = (runner(role_task(), play_vars=play_vars, module_defaults=False), time.monotonic() - started)

    threads = [threading.Thread(target=one, args=("feishu", feishu_play_vars)),
               threading.Thread(target=one, args=("graph", graph_play_vars))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return done


def module_results(run, task):
    """The module results of a looped role task (one per identifier kind)."""
    found = [entry for entry in run.results if entry["task"] in (task, "fleetguard.devices.quarantine : " + task)]
    return found[-1]["result"].get("results", []) if found else []


def outcomes_of(run, task):
    return [outcome for result in module_results(run, task) for outcome in result.get("outcomes", [])]


def messages_of(run, task):
    return " ".join(result.get("msg") or "" for result in module_results(run, task))


class GraphOtherWriter:
    """Another writer: once the quarantine's first PATCH shows on the wire (every device has been read by
    then), it edits an unmanaged property of devices that have not been written yet, between the module's read
    and its write. The quarantine must not undo those edits."""

    def __init__(self, graph, candidates):
        self.graph = graph
        self.candidates = list(candidates)
        self.edited = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join()

    def _run(self):
        seen = 0
        while not self._stop.is_set():
            entries = self.graph.wire.entries(method="PATCH", since=seen)
            if entries:
                written = set(entry["path"].rsplit("/", 1)[-1] for entry in self.graph.wire.entries(method="PATCH"))
                with self.graph.lock:
                    for object_id in self.candidates:
                        if object_id not in written and len(self.edited) < GRAPH_CONCURRENT_EDITS:
                            attributes = self.graph.devices[object_id]["extensionAttributes"]
                            attributes["extensionAttribute3"] = OTHER_WRITER
                            self.edited.append(object_id)
                return
            time.sleep(0.02)


def applied(entries):
    """Writes the emulator applied (a reset after apply included; one reset before apply, or a fault answered
    instead of the write, not)."""
    return [e for e in entries if e["status"] in (200, 204) and e.get("api_code") in (None, 0)
            and e["fault"] not in ("answer", "status", "reset")]


def written_id(entry):
    return entry["path"].rsplit("/", 1)[-1]


def fault_figures(entries):
    """Faults that fired, by kind, as the wire log shows them."""
    kinds = collections.Counter()
    for entry in entries:
        fault = entry["fault"]
        if not fault:
            continue
        where = "%s %s" % (entry["method"], "part" if entry.get("batch_item") else "call")
        if fault == "status" and entry["status"] == 429 and entry.get("api_code") == "activityLimitReached":
            kind = "HTTP 429 without Retry-After"
        elif fault == "status" and entry["status"] == 429:
            kind = "HTTP 429 with rate-limit headers"
        elif fault == "status" and entry.get("api_code") == 99991400:
            kind = "rate limited (code 99991400) under HTTP %s" % entry["status"]
        elif fault == "status":
            kind = "HTTP %s" % entry["status"]
        elif fault == "answer":
            kind = {429: "HTTP 429 without rate-limit headers", 200: "HTML page under HTTP 200"}.get(
                entry["status"], "HTML page under HTTP %s" % entry["status"])
        else:
            kind = fault.replace("_", " ")
        kinds["%s: %s" % (where, kind)] += 1
    return dict(sorted(kinds.items()))


def run1_problems(feishu, graph, feishu_run1, graph_run1, listed_records, listed_devices):
    """Every device of run 1 is done or named with its reason, and a device run 1 wrote is reported changed (or
    uncertain), never unchanged, never failed."""
    problems = []
    for api, run, task, listed, key, done in (
            ("Feishu", feishu_run1, FEISHU_WRITE_TASK, listed_records, "device_record_id",
             lambda rid: feishu.records[rid].get("device_status") == 2),
            ("Graph", graph_run1, GRAPH_WRITE_TASK, listed_devices, "id",
             lambda oid: graph.devices[oid]["accountEnabled"] is False
             and graph.devices[oid]["extensionAttributes"]["extensionAttribute15"] == TAG)):
        outcomes = outcomes_of(run, task)
        if [o["identifier"] for o in outcomes] != listed:
            problems.append("%s run 1 did not report every device in order: %d outcomes for %d devices; output:\n%s"
                            % (api, len(outcomes), len(listed), run.stdout[-3000:]))
            continue
        problems += outcome_problems(api, outcomes, messages_of(run, task), key, done)
    run1_applied = dict(
        Feishu=set(written_id(e) for e in applied(feishu.wire.entries(method="PUT"))),
        Graph=set(written_id(e) for e in applied(graph.wire.entries(method="PATCH"))))
    for api, run, task, key in (("Feishu", feishu_run1, FEISHU_WRITE_TASK, "device_record_id"),
                                ("Graph", graph_run1, GRAPH_WRITE_TASK, "id")):
        for outcome in outcomes_of(run, task):
            if outcome["outcome"] in ("unchanged", "failed") and outcome[key] in run1_applied[api]:
                problems.append("%s %s was written by run 1 but reported %s: %s" % (
                    api, outcome[key], outcome["outcome"], outcome.get("reason", "")[:200]))
    return problems


def outcome_problems(api, outcomes, message, key, done):
    problems = []
    for outcome in outcomes:
        if outcome["outcome"] in ("changed", "unchanged"):
            if not done(outcome[key]):
                problems.append("%s %s reported %s but is not in the desired state" % (api, outcome[key],
                                                                                       outcome["outcome"]))
        elif not outcome.get("reason") or outcome["identifier"] not in message:
            problems.append("%s %s ended %s without being named with a reason"
                            % (api, outcome[key], outcome["outcome"]))
    return problems


def run3_problems(third):
    """Run 3 over a converged fleet succeeds and changes nothing."""
    return ["%s run 3 failed or reported a change:\n%s" % (api, run.stdout[-3000:])
            for api, task, (run, dummy) in (("Feishu", FEISHU_WRITE_TASK, third["feishu"]),
                                            ("Graph", GRAPH_WRITE_TASK, third["graph"]))
            if run.returncode != 0 or [r.get("changed") for r in module_results(run, task)] != [False]]


def test_quarantine_of_1000_records_and_1000_devices_under_20_percent_faults(
        soak_feishu, soak_graph, playbook, tmp_path):
    feishu, graph = soak_feishu, soak_graph
    rng = random.Random(4711)
    with feishu.lock:
        record_ids = sorted(feishu.records, key=int)
        listed_records = record_ids[:LISTED]
        untouched_records = dict((rid, copy.deepcopy(feishu.records[rid])) for rid in record_ids[LISTED:])
        needs_change = set(rid for rid in listed_records if feishu.records[rid].get("device_status", 0) != 2)
    with graph.lock:
        windows = sorted(oid for oid, d in graph.devices.items() if d["operatingSystem"] == "Windows")
        listed_devices = windows[:LISTED]
        untouched_devices = dict((oid, copy.deepcopy(d)) for oid, d in graph.devices.items()
                                 if oid not in set(listed_devices))
    assert len(listed_devices) == LISTED and len(untouched_devices) == 1000

    add_faults(feishu, FEISHU_FAULTS, rng)
    add_faults(graph, GRAPH_FAULTS, rng)
    planned = (sum(count for count, dummy, dummy2 in FEISHU_FAULTS),
               sum(count for count, dummy, dummy2 in GRAPH_FAULTS) + GRAPH_CONCURRENT_EDITS)

    # Run 1: faults. The other writer edits devices the quarantine has read but not written yet (the last ones).
    with GraphOtherWriter(graph, reversed(listed_devices)) as other_writer:
        first = run_both(playbook, tmp_path, "run1", feishu_vars(feishu, listed_records),
                         graph_vars(graph, listed_devices))
    left_feishu, left_graph = len(feishu.faults.rules()), len(graph.faults.rules())
    feishu.faults.clear()
    graph.faults.clear()
    feishu_run1, graph_run1 = first["feishu"][0], first["graph"][0]
    feishu_seq, graph_seq = feishu.wire.entries()[-1]["seq"], graph.wire.entries()[-1]["seq"]

    # Every device is done or named with its reason. Problems are collected, the figures printed, then asserted.
    problems = run1_problems(feishu, graph, feishu_run1, graph_run1, listed_records, listed_devices)
    failed_reasons = collections.Counter(
        "%s: %s" % (api, outcome["reason"].split(" (", 1)[0][:90])
        for api, run, task in (("Feishu", feishu_run1, FEISHU_WRITE_TASK), ("Graph", graph_run1, GRAPH_WRITE_TASK))
        for outcome in outcomes_of(run, task) if outcome.get("reason"))
    feishu_outcomes = collections.Counter(o["outcome"] for o in outcomes_of(feishu_run1, FEISHU_WRITE_TASK))
    graph_outcomes = collections.Counter(o["outcome"] for o in outcomes_of(graph_run1, GRAPH_WRITE_TASK))

    # Run 2 converges, run 3 changes nothing.
    second = run_both(playbook, tmp_path, "run2", feishu_vars(feishu, listed_records), graph_vars(graph, listed_devices))
    problems += ["%s run 2 did not converge:\n%s" % (api, run.stdout[-3000:])
                 for api, (run, dummy) in second.items() if run.returncode != 0]
    with feishu.lock:
        undone = [rid for rid in listed_records if feishu.records[rid].get("device_status") != 2]
    with graph.lock:
        undone += [oid for oid in listed_devices if graph.devices[oid]["accountEnabled"] is not False
                   or graph.devices[oid]["extensionAttributes"]["extensionAttribute15"] != TAG]
    if undone:
        problems.append("not quarantined after run 2: %s" % undone)
    feishu_seq2, graph_seq2 = feishu.wire.entries()[-1]["seq"], graph.wire.entries()[-1]["seq"]
    third = run_both(playbook, tmp_path, "run3", feishu_vars(feishu, listed_records), graph_vars(graph, listed_devices))
    problems += run3_problems(third)
    third_writes = [e for e in feishu.wire.entries(since=feishu_seq2) + graph.wire.entries(since=graph_seq2)
                    if e["method"] in ("PUT", "PATCH", "DELETE")]
    if third_writes:
        problems.append("run 3 wrote: %s" % [(e["method"], e["path"]) for e in third_writes])

    # No change applied twice; nothing written outside the list; what another writer did survives.
    feishu_wire, graph_wire = feishu.wire.entries(), graph.wire.entries()
    feishu_writes = [e for e in feishu_wire if e["method"] in ("PUT", "DELETE", "POST") and "/device_records" in e["path"]]
    graph_writes = [e for e in graph_wire if e["method"] in ("PATCH", "DELETE")]
    feishu_applied = collections.Counter(written_id(e) for e in applied(feishu_writes))
    graph_applied = collections.Counter(written_id(e) for e in applied(graph_writes))
    edited_records = collections.Counter(written_id(e) for e in feishu_wire if e["fault"] == "concurrent_edit")
    with feishu.lock:
        changed_outside = [rid for rid in untouched_records if feishu.records[rid] != untouched_records[rid]]
        unexplained_versions = dict((rid, feishu.records[rid]["version"]) for rid in listed_records
                                    if int(feishu.records[rid]["version"]) != feishu_applied[rid] + edited_records[rid])
        overwritten = [rid for rid in edited_records if feishu.records[rid]["device_ownership"] != 1]
    with graph.lock:
        changed_outside += [oid for oid in untouched_devices if graph.devices[oid] != untouched_devices[oid]]
        lost_edits = [oid for oid in other_writer.edited
                      if graph.devices[oid]["extensionAttributes"]["extensionAttribute3"] != OTHER_WRITER]
    for failed, message in (
            (dict((rid, n) for rid, n in feishu_applied.items() if n > 1), "Feishu records written twice"),
            (dict((oid, n) for oid, n in graph_applied.items() if n > 1), "Graph devices written twice"),
            (set(feishu_applied) ^ needs_change, "Feishu writes differ from the records that needed one"),
            (set(graph_applied) ^ set(listed_devices), "Graph writes differ from the listed devices"),
            (set(written_id(e) for e in feishu_writes) - set(listed_records), "Feishu writes outside the list"),
            (set(written_id(e) for e in graph_writes) - set(listed_devices), "Graph writes outside the list"),
            (changed_outside, "changed outside the list"),
            (unexplained_versions, "Feishu versions that moved without a write or an edit"),
            (overwritten, "another writer's device_ownership overwritten"),
            (lost_edits, "another writer's Graph edits undone"),
            ([] if other_writer.edited else ["none"], "the other writer edited no Graph device")):
        if failed:
            problems.append("%s: %s" % (message, sorted(failed)[:20]))

    figures = {
        "planned faults (Feishu, Graph incl. other writer)": planned,
        "fault rules left unfired (Feishu, Graph)": (left_feishu, left_graph),
        "Feishu faults fired": fault_figures(feishu_wire),
        "Graph faults fired": fault_figures(graph_wire),
        "Graph devices edited by another writer": len(other_writer.edited),
        "Feishu run 1 outcomes": dict(feishu_outcomes),
        "Graph run 1 outcomes": dict(graph_outcomes),
        "run 1 reasons of unfinished devices": dict(failed_reasons),
        "uncertain outcomes (Feishu, Graph)": (feishu_outcomes["uncertain"], graph_outcomes["uncertain"]),
        "Feishu PUTs sent / applied / records changed": (
            len([e for e in feishu_writes if e["method"] == "PUT"]), sum(feishu_applied.values()), len(feishu_applied)),
        "Graph PATCHes sent / applied / devices changed": (
            len(graph_writes), sum(graph_applied.values()), len(graph_applied)),
        "write retries (Feishu PUTs, Graph PATCHes beyond one per device)": (
            len([e for e in feishu_writes if e["method"] == "PUT"]) - len(feishu_applied),
            len(graph_writes) - len(graph_applied)),
        "requests (Feishu, Graph top-level)": (
            len(feishu_wire), len([e for e in graph_wire if e.get("batch_item") is None])),
        "writes in run 2 (Feishu, Graph)": (
            len([e for e in feishu.wire.entries(since=feishu_seq) if e["method"] == "PUT" and e["seq"] <= feishu_seq2]),
            len([e for e in graph.wire.entries(since=graph_seq) if e["method"] == "PATCH" and e["seq"] <= graph_seq2])),
        "seconds (run 1, 2, 3) Feishu": tuple(round(seconds, 1) for dummy, seconds in (
            first["feishu"], second["feishu"], third["feishu"])),
        "seconds (run 1, 2, 3) Graph": tuple(round(seconds, 1) for dummy, seconds in (
            first["graph"], second["graph"], third["graph"])),
    }
    text = "fault soak figures:\n" + json.dumps(figures, indent=2)
    print("\n" + text)
    warnings.warn(SoakFigures(text), stacklevel=1)
    assert problems == [], "\n".join(problems)
