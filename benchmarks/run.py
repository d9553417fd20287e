"""Benchmark: fleetguard.devices against the naive ansible.builtin.uri loop and against the APIs' bounds.

Every approach runs as real ansible-playbook processes against the same emulators, started once in this
process with the APIs' published limits (Feishu: update/list 10 per 1 s, get 50 per 1 s; Graph: device
writes 3,000 per 150 s per app and tenant) and 30 ms of latency on every call. Each run starts from the
same generated data, and the end state is checked, so a fast run that did the wrong thing fails instead
of scoring.

The bound of a scenario is the least time the limits and the calls' latency allow, plus a bare
ansible-playbook start-up measured in the same run: a window quota of N calls per W seconds needs
(ceil(calls / N) - 1) * W seconds before the last call may start, and calls that depend on each other
(list pages) add their latency one after the other.

    .venv/bin/python benchmarks/run.py                 # full size (a few minutes), writes benchmarks/results/
    .venv/bin/python benchmarks/run.py --smoke         # seconds; checks call counts, writes nothing

(`make benchmark` runs the full size with the collection tree and venv set up; `make test` runs --smoke.)
"""

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from sandbox.feishu import FeishuSandbox  # noqa: E402
from sandbox.msgraph import GraphSandbox  # noqa: E402

LATENCY = 0.03
FEISHU_LIST, FEISHU_UPDATE, FEISHU_GET = (10, 1.0), (10, 1.0), (50, 1.0)
FEISHU_PAGE = 100
GRAPH_WRITES = (3000, 150.0)
GRAPH_BATCH, GRAPH_BATCHES_IN_FLIGHT = 20, 4
TAG = "bench:2026"


def window_seconds(calls, quota):
    """Least time before the last of `calls` may start under a quota of (count, window seconds)."""
    count, window = quota
    return max(0, math.ceil(calls / float(count)) - 1) * window


class Runner:
    """Runs playbooks with the emulators' credentials in the environment; times them."""

    def __init__(self, feishu, graph):
        self.env = dict(os.environ)
        self.env.update({
            "ANSIBLE_COLLECTIONS_PATH": os.environ.get("ANSIBLE_COLLECTIONS_PATH",
                                                       os.path.join(ROOT, "build", "collections")),
            "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCALHOST_WARNING": "0", "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "FEISHU_BASE_URL": feishu.url, "FEISHU_APP_ID": feishu.app_id, "FEISHU_APP_SECRET": feishu.app_secret,
            "MSGRAPH_ENDPOINT": graph.url, "AZURE_AUTHORITY_HOST": graph.url, "AZURE_TENANT_ID": graph.tenant_id,
            "AZURE_CLIENT_ID": graph.client_id, "AZURE_CLIENT_SECRET": graph.client_secret,
        })

    def run(self, playbook, extra_vars, check=False):
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
            json.dump(extra_vars, handle)
            vars_file = handle.name
        command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
                   os.path.join(HERE, playbook), "-e", "@" + vars_file] + (["--check"] if check else [])
        started = time.monotonic()
        proc = subprocess.run(command, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, check=False)
        elapsed = time.monotonic() - started
        # The largest resident set of any process this run started so far (the module, or the controller).
        self.peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
        os.unlink(vars_file)
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout[-4000:])
            raise SystemExit("%s failed (exit %d)" % (playbook, proc.returncode))
        return elapsed


def wire_stats(sandbox):
    entries = sandbox.wire.entries()
    top_level = [e for e in entries if e.get("batch_item") is None]
    writes = [e for e in entries if e["method"] in ("PUT", "PATCH", "DELETE") and e["status"] and e["status"] < 300]
    return dict(http_calls=len(top_level), throttled=len([e for e in entries if e["status"] == 429]),
                writes=len(writes), token_calls=len([e for e in top_level if "token" in e["path"]]),
                list_calls=len([e for e in top_level if e["method"] == "GET" and e["path"].endswith("/device_records")]))


def measured(seconds, sandbox, bound, devices, scaled_from=None):
    stats = wire_stats(sandbox)
    stats.update(seconds=seconds, bound=bound, devices=devices)
    if scaled_from:
        factor = devices / float(scaled_from)
        stats.update(seconds=seconds * factor, measured_devices=scaled_from, scaled=True,
                     http_calls=int(stats["http_calls"] * factor), writes=int(stats["writes"] * factor),
                     throttled=int(stats["throttled"] * factor))
    return stats


def fresh(sandbox):
    sandbox.reset(seed=1)
    sandbox.wire.clear()


def feishu_audit(runner, feishu, startup, count, approach, subset=None):
    """(a) Check mode over `count` records by id: the collection reads them with list pages."""
    fresh(feishu)
    with feishu.lock:
        ids = sorted(feishu.records)[:count]
    if approach == "fleetguard":
        seconds = runner.run("fleetguard_feishu_audit.yml", dict(bench_ids=ids), check=True)
    else:
        seconds = runner.run("naive_feishu_audit.yml", dict(bench_ids=ids[:subset]), check=True)
    assert not [e for e in feishu.wire.entries() if e["method"] in ("PUT", "DELETE")], "the audit wrote"
    pages = math.ceil(len(feishu.records) / float(FEISHU_PAGE))
    bound = startup + window_seconds(pages, FEISHU_LIST) + pages * LATENCY
    stats = measured(seconds, feishu, bound, count, subset if approach != "fleetguard" else None)
    stats["directory_pages"] = pages
    if approach == "fleetguard":
        stats["peak_rss_mb"] = runner.peak_rss_mb
    return stats


def feishu_quarantine(runner, feishu, startup, count, approach, rerun=False, subset=None):
    """(b) `count` records marked untrusted by device name, or the re-run of that."""
    if not rerun:
        fresh(feishu)
    feishu.wire.clear()
    with feishu.lock:
        targets = sorted(r["device_name"] for r in feishu.records.values()
                         if r.get("device_status", 0) != 2 or rerun)[:count]
    names = targets if approach == "fleetguard" else targets[:subset]
    playbook = "fleetguard_feishu.yml" if approach == "fleetguard" else "naive_feishu.yml"
    seconds = runner.run(playbook, dict(bench_names=names))
    with feishu.lock:
        done = [r for r in feishu.records.values() if r["device_name"] in names and r.get("device_status") == 2]
    assert len(done) == len(names), "%s left records behind" % approach
    pages = math.ceil(len(feishu.records) / float(FEISHU_PAGE))
    writes = 0 if rerun else count
    # Finding the records: a scan of every page, or one lookup per name, whichever is less.
    find = min(window_seconds(pages, FEISHU_LIST) + pages * LATENCY, window_seconds(count, FEISHU_LIST) + LATENCY)
    bound = startup + find + window_seconds(writes, FEISHU_UPDATE) + (2 * LATENCY if writes else 0)
    return measured(seconds, feishu, bound, count, subset if approach != "fleetguard" else None)


def graph_quarantine(runner, graph, startup, count, approach, rerun=False, subset=None):
    """(c) `count` devices disabled and tagged by object id, or the re-run of that."""
    if not rerun:
        fresh(graph)
    graph.wire.clear()
    with graph.lock:
        # App-only callers may disable only Windows devices.
        targets = sorted(oid for oid, device in graph.devices.items()
                         if (device.get("operatingSystem") or "").lower().startswith("windows"))[:count]
    assert len(targets) == count, "the sandbox has too few Windows devices"
    ids = targets if approach == "fleetguard" else targets[:subset]
    playbook = "fleetguard_msgraph.yml" if approach == "fleetguard" else "naive_msgraph.yml"
    seconds = runner.run(playbook, dict(bench_ids=ids, bench_tag=TAG))
    with graph.lock:
        done = [oid for oid in ids if graph.devices[oid]["extensionAttributes"]["extensionAttribute14"] == TAG
                and graph.devices[oid]["accountEnabled"] is False]
    assert len(done) == len(ids), "%s left devices behind" % approach
    rounds = math.ceil(math.ceil(count / float(GRAPH_BATCH)) / GRAPH_BATCHES_IN_FLIGHT)
    phases = 1 if rerun else 2  # read, then write
    bound = startup + LATENCY + window_seconds(0 if rerun else count, GRAPH_WRITES) + phases * rounds * LATENCY
    return measured(seconds, graph, bound, count, subset if approach != "fleetguard" else None)


def one_device(runner, feishu, startup, approach):
    """(d) One record by name, collection against uri."""
    stats = feishu_quarantine(runner, feishu, startup, 1, approach, subset=1)
    stats.pop("scaled", None)
    return stats


def bare_startup(runner):
    """ansible-playbook with one no-op task: the floor under every playbook run."""
    return min(runner.run("noop.yml", {}) for dummy in range(2))


def table(results, startup):
    lines = ["bare ansible-playbook start-up: %.2f s; emulators: published limits, %d ms latency per call"
             % (startup, LATENCY * 1000), ""]
    header = "%-44s %-12s %9s %6s %5s %6s %9s %13s" % (
        "scenario", "approach", "seconds", "calls", "429s", "writes", "vs bound", "vs uri loop")
    lines += [header, "-" * len(header)]
    for stats in results:
        naive = next((r for r in results if r["scenario"] == stats["scenario"] and r["approach"] != "fleetguard"
                      and r["approach"] != stats["approach"]), None)
        speedup = "%.1fx faster" % (naive["seconds"] / stats["seconds"]) if naive and stats["approach"] == "fleetguard" else "-"
        approach = "collection" if stats["approach"] == "fleetguard" else "uri loop" + ("*" if stats.get("scaled") else "")
        lines.append("%-44s %-12s %9.1f %6d %5d %6d %8.2fx %13s" % (
            stats["scenario"], approach, stats["seconds"], stats["http_calls"], stats["throttled"], stats["writes"],
            stats["seconds"] / stats["bound"], speedup))
    peak = [r["peak_rss_mb"] for r in results if "peak_rss_mb" in r]
    lines += ["", "'vs bound': the run's time over the least time the APIs' limits and the calls' latency allow,",
              "plus a bare ansible-playbook start-up (1.00x = the bound).",
              "* measured on %s devices and scaled linearly." % ", ".join(sorted(set(
                  str(r["measured_devices"]) for r in results if r.get("scaled"))) or ["-"])]
    if peak:
        lines.append("Peak resident memory of any process of the audit run (module or controller): %.0f MB." % peak[0])
    return "\n".join(lines)


def chart(results, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is missing: no chart (make benchmark installs it)")
        return
    scenarios = list(dict.fromkeys(r["scenario"] for r in results))
    approaches = list(dict.fromkeys(r["approach"] for r in results))
    names = {"fleetguard": "collection (one task)", "ansible.builtin.uri loop": "ansible.builtin.uri loop"}
    figure, axis = plt.subplots(figsize=(11, 0.8 + 0.75 * len(scenarios)))
    height = 0.8 / (len(approaches) + 1)
    for index, approach in enumerate(approaches + ["bound"]):
        values = []
        for scenario in scenarios:
            row = next((r for r in results if r["scenario"] == scenario and r["approach"] == approach), None)
            if approach == "bound":
                row = next(r for r in results if r["scenario"] == scenario)
                values.append(row["bound"])
            else:
                values.append(row["seconds"] if row else 0)
        positions = [n + index * height for n in range(len(scenarios))]
        axis.barh(positions, values, height=height, label=names.get(approach, approach))
    axis.set_yticks([n + height * len(approaches) / 2 for n in range(len(scenarios))])
    axis.set_yticklabels(scenarios)
    axis.set_xscale("log")
    axis.set_xlabel("seconds (log scale)")
    axis.invert_yaxis()
    axis.legend(loc="lower right")
    axis.set_title("fleetguard.devices vs ansible.builtin.uri vs the APIs' bound (%d ms latency)" % (LATENCY * 1000))
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    print("chart: %s" % os.path.relpath(path, ROOT))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--smoke", action="store_true", help="small sizes, no uri loops, check call counts only")
    parser.add_argument("--audit-records", type=int, default=10000)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--uri-subset", type=int, default=100)
    args = parser.parse_args()
    if args.smoke:
        args.audit_records, args.records, args.devices = 200, 30, 45

    feishu_size = max(args.audit_records, args.records + 200)
    feishu = FeishuSandbox(records=feishu_size, seed=1).start()
    graph = GraphSandbox(devices=args.devices * 3 + 60, seed=1).start()
    feishu.latency = graph.latency = LATENCY
    runner = Runner(feishu, graph)
    approaches = ["fleetguard"] + ([] if args.smoke else ["ansible.builtin.uri loop"])
    results = []

    def record(label, stats, approach):
        stats.update(scenario=label, approach=approach)
        results.append(stats)
        print("  %-44s %-26s %7.1f s  %5d calls %4d writes %3d 429s" % (
            label, approach, stats["seconds"], stats["http_calls"], stats["writes"], stats["throttled"]), flush=True)

    try:
        startup = bare_startup(runner)
        print("  bare ansible-playbook start-up: %.2f s" % startup, flush=True)
        for approach in approaches:
            kind = "fleetguard" if approach == "fleetguard" else "naive"
            record("(a) check-mode audit of %d feishu records" % args.audit_records,
                   feishu_audit(runner, feishu, startup, args.audit_records, kind, args.uri_subset), approach)
        for approach in approaches:
            kind = "fleetguard" if approach == "fleetguard" else "naive"
            record("(b) %d feishu records quarantined" % args.records,
                   feishu_quarantine(runner, feishu, startup, args.records, kind, subset=args.uri_subset), approach)
            if kind == "fleetguard":
                record("(b) re-run of the feishu quarantine",
                       feishu_quarantine(runner, feishu, startup, args.records, kind, rerun=True), approach)
        for approach in approaches:
            kind = "fleetguard" if approach == "fleetguard" else "naive"
            record("(c) %d graph devices disabled and tagged" % args.devices,
                   graph_quarantine(runner, graph, startup, args.devices, kind, subset=args.uri_subset), approach)
            if kind == "fleetguard":
                record("(c) re-run of the graph quarantine",
                       graph_quarantine(runner, graph, startup, args.devices, kind, rerun=True), approach)
        if not args.smoke:
            for approach in approaches:
                record("(d) one feishu record", one_device(runner, feishu, startup,
                                                           "fleetguard" if approach == "fleetguard" else "naive"),
                       approach)
    finally:
        feishu.stop()
        graph.stop()

    print()
    print(table(results, startup))
    if args.smoke:
        audit = results[0]
        expected_pages = audit["directory_pages"]
        assert (audit["token_calls"], audit["list_calls"]) == (1, expected_pages), audit
        assert all(r["throttled"] == 0 for r in results), "the collection provoked 429s"
        assert [r["writes"] for r in results if "re-run" in r["scenario"]] == [0, 0], "a re-run wrote"
        print("\nsmoke: call counts as designed (audit of %d of %d records = 1 token + %d list calls), no 429s,"
              " re-runs wrote nothing" % (args.audit_records, feishu_size, expected_pages))
        return
    out = os.path.join(HERE, "results")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "latest.json"), "w") as handle:
        json.dump(dict(startup=startup, latency=LATENCY, results=results), handle, indent=2)
    with open(os.path.join(out, "latest.txt"), "w") as handle:
        handle.write(table(results, startup) + "\n")
    chart(results, os.path.join(out, "latest.png"))


if __name__ == "__main__":
    main()
