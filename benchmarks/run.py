"""Benchmark: fleetguard.devices against the naive ansible.builtin.uri loop and the APIs' rate-limit bounds.

Both approaches run as real ansible-playbook processes against the same emulators, started once in this
process with their production rate limits (Feishu updates 10/s; Graph device writes 3,000 per 150 s per
app, i.e. 20/s). Each run starts from the same generated data, and the end state is checked, so a fast
run that did the wrong thing fails instead of scoring.

    .venv/bin/python benchmarks/run.py [--feishu-records 100] [--graph-devices 200] [--no-naive]

(`make benchmark` runs it with the collection tree and venv set up.) Prints a table and writes
benchmarks/results/latest.json.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from sandbox.feishu import FeishuSandbox  # noqa: E402
from sandbox.msgraph import GraphSandbox  # noqa: E402

FEISHU_UPDATE_LIMIT = 10.0  # PUT device_records: 10 per second per app and tenant
GRAPH_WRITE_LIMIT = 3000.0 / 150  # device writes: 3,000 per 150 s per app and tenant
TAG = "bench:2026"


def run_playbook(playbook, env, extra_vars):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(extra_vars, handle)
        vars_file = handle.name
    command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
               os.path.join(HERE, playbook), "-e", "@" + vars_file]
    started = time.monotonic()
    proc = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, check=False)
    elapsed = time.monotonic() - started
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
                writes=len(writes))


def feishu_scenario(sandbox, env, count, approach):
    sandbox.reset(seed=1)
    sandbox.wire.clear()
    with sandbox.lock:
        targets = sorted(r["device_name"] for r in sandbox.records.values() if r.get("device_status", 0) != 2)[:count]
    playbook = "fleetguard_feishu.yml" if approach == "fleetguard" else "naive_feishu.yml"
    seconds = run_playbook(playbook, env, dict(bench_names=targets))
    with sandbox.lock:
        done = [r for r in sandbox.records.values() if r["device_name"] in targets and r.get("device_status") == 2]
    assert len(done) == len(targets), "%s left records behind" % approach
    stats = wire_stats(sandbox)
    stats.update(seconds=seconds, bound=len(targets) / FEISHU_UPDATE_LIMIT, devices=len(targets))
    return stats


def graph_scenario(sandbox, env, count, approach):
    sandbox.reset(seed=1)
    sandbox.wire.clear()
    with sandbox.lock:
        targets = sorted(sandbox.devices)[:count]
    playbook = "fleetguard_msgraph.yml" if approach == "fleetguard" else "naive_msgraph.yml"
    seconds = run_playbook(playbook, env, dict(bench_ids=targets, bench_tag=TAG))
    with sandbox.lock:
        done = [oid for oid in targets if sandbox.devices[oid]["extensionAttributes"]["extensionAttribute14"] == TAG]
    assert len(done) == len(targets), "%s left devices behind" % approach
    stats = wire_stats(sandbox)
    stats.update(seconds=seconds, bound=len(targets) / GRAPH_WRITE_LIMIT, devices=len(targets))
    return stats


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--feishu-records", type=int, default=100)
    parser.add_argument("--graph-devices", type=int, default=200)
    parser.add_argument("--no-naive", action="store_true", help="skip the ansible.builtin.uri loops")
    args = parser.parse_args()

    feishu = FeishuSandbox(records=args.feishu_records * 2 + 20, seed=1).start()
    graph = GraphSandbox(devices=args.graph_devices + 20, seed=1).start()
    env = dict(os.environ)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": os.environ.get("ANSIBLE_COLLECTIONS_PATH", os.path.join(ROOT, "build", "collections")),
        "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCALHOST_WARNING": "0", "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "FEISHU_BASE_URL": feishu.url, "FEISHU_APP_ID": feishu.app_id, "FEISHU_APP_SECRET": feishu.app_secret,
        "MSGRAPH_ENDPOINT": graph.url, "AZURE_AUTHORITY_HOST": graph.url, "AZURE_TENANT_ID": graph.tenant_id,
        "AZURE_CLIENT_ID": graph.client_id, "AZURE_CLIENT_SECRET": graph.client_secret,
    })
    approaches = ["fleetguard"] + ([] if args.no_naive else ["ansible.builtin.uri loop"])
    results = []
    try:
        for label, scenario, sandbox, count in (
                ("feishu: %d records untrusted" % args.feishu_records, feishu_scenario, feishu, args.feishu_records),
                ("graph: %d devices tagged" % args.graph_devices, graph_scenario, graph, args.graph_devices)):
            for approach in approaches:
                stats = scenario(sandbox, env, count, "fleetguard" if approach == "fleetguard" else "naive")
                stats.update(scenario=label, approach=approach)
                results.append(stats)
                print("  ran %-32s %-26s %7.1f s" % (label, approach, stats["seconds"]), flush=True)
    finally:
        feishu.stop()
        graph.stop()

    print()
    header = "%-32s %-26s %8s %7s %6s %7s %12s %14s" % (
        "scenario", "approach", "seconds", "calls", "429s", "writes", "vs naive", "vs rate bound")
    print(header)
    print("-" * len(header))
    for stats in results:
        naive = next((r for r in results if r["scenario"] == stats["scenario"] and r["approach"] != "fleetguard"), None)
        speedup = "%.1fx faster" % (naive["seconds"] / stats["seconds"]) if naive and stats is not naive else "-"
        print("%-32s %-26s %8.1f %7d %6d %7d %12s %9.2fx of %.0fs" % (
            stats["scenario"], stats["approach"], stats["seconds"], stats["http_calls"], stats["throttled"],
            stats["writes"], speedup, stats["seconds"] / stats["bound"], stats["bound"]))
    print()
    print("'vs rate bound' is the run's time over the least time the API's published write limit allows for")
    print("that many writes (1.00x = exactly at the limit); it includes ansible-playbook's own start-up.")
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "latest.json"), "w") as handle:
        json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
