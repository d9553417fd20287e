"""Benchmark: fleetguard.devices against the naive ansible.builtin.uri loop and against the APIs' bounds.

Every approach runs as real ansible-playbook processes against the same emulators, started once in this
process with the APIs' published limits (Feishu: update/list 10 per 1 s, get 50 per 1 s; Graph: device
writes 3,000 per 150 s per app and tenant) and 30 ms of latency on every call. Each run starts from the
same generated data, with fresh rate windows on both sides (the emulator's, and the modules' shared quota
state, which lives under the runs' own TMPDIR), and the end state is checked, so a fast run that did the
wrong thing fails instead of scoring.

Approaches, side by side:

- the collection, one task: the module over the whole list (benchmarks/fleetguard_*.yml);
- the collection per host via the inventory: the devices are hosts of the collection's inventory plugins,
  read once by ansible-inventory into the plugins' cache (as AWX's inventory sync reads them before a job),
  and the module runs once per host with --forks 10 (benchmarks/fleetguard_per_host_*.yml);
- the naive loop: ansible.builtin.uri with `until` retries (benchmarks/naive_*.yml);
- the bound: the least time the limits and the calls' latency allow, plus a bare ansible-playbook start-up
  measured in the same run. A window quota of N calls per W seconds needs (ceil(calls / N) - 1) * W
  seconds before the last call may start, and calls that depend on each other (list pages) add their
  latency one after the other.

The per-host runs and the uri loops are measured on a subset of the devices (--uri-subset, 100 by default)
and scaled: their fixed part (the start-up; for per-host runs, the start-up with the inventory loaded)
stays, the rest grows linearly with the devices. Scaled rows are marked.

Scenarios: (a) a check-mode audit of many Feishu records; (b) Feishu records quarantined, then the re-run;
(c) Graph devices disabled and tagged, then the re-run; (d) one device, collection against uri; (e) the
devices as inventory hosts of the inventory plugins, playbooks/quarantine.yml in its host form, in two
concurrent slices (--limit over disjoint halves of the hosts, two ansible-playbook processes started at
once, as an AWX sliced job template runs them), against the same playbook's one-task (localhost) form over
the same devices; each device must be written exactly once across the slices. (e) runs once per
directory: --records Feishu records, --devices Graph devices (tagged only: an app-only caller may disable
only Windows devices).

    .venv/bin/python benchmarks/run.py                 # full size (15-20 min), writes benchmarks/results/
    .venv/bin/python benchmarks/run.py --smoke         # < 1 min; checks call counts, writes nothing
    .venv/bin/python benchmarks/run.py --audit-records 1000 --records 200 --devices 200 --uri-subset 20 \\
        --out /tmp/bench                                # reduced size, results elsewhere

(`make benchmark` runs the full size with the collection tree and venv set up and writes latest.json,
latest.txt and latest.png under benchmarks/results/, which are committed; `make test` runs --smoke.)
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from sandbox.feishu import FeishuSandbox  # noqa: E402
from sandbox.msgraph import GraphSandbox  # noqa: E402

from bounds import LATENCY  # noqa: E402
from report import chart, environment, smoke_checks, table, targets  # noqa: E402
from scenarios import (FORKS, LABELS, ONE_TASK, PER_HOST, SLICED, SLICES, URI, Runner, bare_startup,  # noqa: E402
                       feishu_audit, feishu_quarantine, graph_quarantine, one_device, sliced_quarantine)


def arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--smoke", action="store_true",
                        help="small sizes, no uri loops, check call counts only; writes no results")
    parser.add_argument("--audit-records", type=int, default=10000, help="(a): records audited")
    parser.add_argument("--records", type=int, default=1000, help="(b), (e): Feishu records quarantined")
    parser.add_argument("--devices", type=int, default=1000, help="(c), (e): Graph devices quarantined")
    parser.add_argument("--uri-subset", type=int, default=100,
                        help="devices the uri loops and the per-host runs are measured on, then scaled")
    parser.add_argument("--out", default=os.path.join(HERE, "results"),
                        help="where latest.json, latest.txt and latest.png go (default: benchmarks/results)")
    args = parser.parse_args()
    if args.smoke:
        args.audit_records, args.records, args.devices, args.uri_subset = 200, 30, 45, 4
    return args


class Results(list):
    """The rows measured so far, each printed as it comes."""

    def record(self, label, stats, approach):
        stats.update(scenario=label, approach=approach)
        self.append(stats)
        print("  %-46s %-14s %7.1f s  %5d calls %4d writes %3d 429s%s" % (
            label, LABELS[approach], stats["seconds"], stats["http_calls"], stats["writes"],
            stats["throttled"], " (scaled from %d)" % stats["measured_devices"] if stats.get("scaled") else ""),
            flush=True)


def run_scenarios(args, runner, feishu, graph, startup, results):
    approaches = [ONE_TASK, PER_HOST] + ([] if args.smoke else [URI])
    # Smoke: the per-host machinery (sync, cache, --limit, forks, scaling) is proven by (b) and (c).
    for approach in (a for a in approaches if not (args.smoke and a == PER_HOST)):
        results.record("(a) check-mode audit of %d feishu records" % args.audit_records,
                       feishu_audit(runner, feishu, startup, args.audit_records, approach, args.uri_subset), approach)
    for label, scenario, sandbox, count in (("(b) %d feishu records quarantined", feishu_quarantine, feishu, args.records),
                                            ("(c) %d graph devices disabled and tagged", graph_quarantine, graph,
                                             args.devices)):
        for approach in approaches:
            results.record(label % count, scenario(runner, sandbox, startup, count, approach, subset=args.uri_subset),
                           approach)
            if approach == ONE_TASK:
                results.record("%s re-run of the %s quarantine" % (label[:3], "feishu" if sandbox is feishu else "graph"),
                               scenario(runner, sandbox, startup, count, approach, rerun=True), approach)
    if not args.smoke:
        for approach in (ONE_TASK, URI):
            results.record("(d) one feishu record", one_device(runner, feishu, startup, approach), approach)
    for directory, sandbox, count, what in (("feishu", feishu, args.records, "feishu records"),
                                            ("msgraph", graph, args.devices, "graph devices")):
        label = "(e) %d %s as hosts, %d slices" % (count, what, SLICES)
        one_task, sliced = sliced_quarantine(runner, sandbox, directory, startup, count)
        results.record(label, one_task, ONE_TASK)
        results.record(label, sliced, SLICED)


def write_results(args, results, startup):
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "latest.json"), "w") as handle:
        json.dump(dict(environment(args), startup=startup, latency=LATENCY, forks=FORKS, results=results,
                       targets=targets(results)), handle, indent=2)
        handle.write("\n")
    with open(os.path.join(args.out, "latest.txt"), "w") as handle:
        handle.write(table(results, startup) + "\n")
    written = ["latest.json", "latest.txt"]
    if chart(results, os.path.join(args.out, "latest.png")):
        written.append("latest.png")
    print("\nresults: %s" % ", ".join(os.path.join(os.path.relpath(args.out, ROOT), name) for name in written))


def main():
    args = arguments()
    feishu_size = max(args.audit_records, args.records + 200)
    feishu = FeishuSandbox(records=feishu_size, seed=1).start()
    graph = GraphSandbox(devices=args.devices * 3 + 60, seed=1).start()
    feishu.latency = graph.latency = LATENCY
    scratch = tempfile.mkdtemp(prefix="fleetguard-benchmark-")
    runner = Runner(feishu, graph, scratch)
    results = Results()
    try:
        startup = bare_startup(runner)
        print("  bare ansible-playbook start-up: %.2f s" % startup, flush=True)
        run_scenarios(args, runner, feishu, graph, startup, results)
    finally:
        feishu.stop()
        graph.stop()
        shutil.rmtree(scratch, ignore_errors=True)

    print()
    print(table(results, startup, with_targets=not args.smoke))  # smoke sizes say nothing about the targets
    if args.smoke:
        smoke_checks(results, args, feishu_size)
        return
    write_results(args, list(results), startup)


if __name__ == "__main__":
    main()
