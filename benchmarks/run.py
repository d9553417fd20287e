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
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from sandbox.feishu import FeishuSandbox  # noqa: E402
from sandbox.msgraph import GraphSandbox  # noqa: E402

LATENCY = 0.03
FEISHU_LIST, FEISHU_UPDATE, FEISHU_GET = (10, 1.0), (10, 1.0), (50, 1.0)
FEISHU_PAGE = 100
FEISHU_UNTRUSTED = 2
GRAPH_WRITES = (3000, 150.0)
GRAPH_BATCH, GRAPH_BATCHES_IN_FLIGHT = 20, 4
TAG = "bench:2026"
QUARANTINE_REASON = "BENCH-1"
QUARANTINE_TAG = ("extensionAttribute15", "quarantine:" + QUARANTINE_REASON)
FORKS = 10
SLICES = 2

ONE_TASK, PER_HOST, URI, SLICED = "fleetguard", "fleetguard per host", "ansible.builtin.uri loop", "fleetguard slices"
LABELS = {ONE_TASK: "collection", PER_HOST: "per host f%d" % FORKS, URI: "uri loop", SLICED: "%d slices" % SLICES}
LEGEND = {ONE_TASK: "collection (one task)", PER_HOST: "collection per host via the inventory (forks %d)" % FORKS,
          URI: "ansible.builtin.uri loop", SLICED: "collection, host form in %d concurrent slices" % SLICES}


def window_seconds(calls, quota):
    """Least time before the last of `calls` may start under a quota of (count, window seconds)."""
    count, window = quota
    return max(0, math.ceil(calls / float(count)) - 1) * window


def feishu_bound(startup, directory_size, lookups, writes, by_id=False):
    """Least time to find `lookups` records (a scan of every page, or one call per record: by name through the
    list endpoint, by id through get) and then write `writes` of them (a PUT, answered)."""
    pages = math.ceil(directory_size / float(FEISHU_PAGE))
    scan = window_seconds(pages, FEISHU_LIST) + pages * LATENCY
    one_by_one = window_seconds(lookups, FEISHU_GET if by_id else FEISHU_LIST) + LATENCY
    return startup + min(scan, one_by_one) + window_seconds(writes, FEISHU_UPDATE) + (2 * LATENCY if writes else 0)


def graph_bound(startup, devices, writes):
    """Least time to read `devices` and write `writes` of them: a token, then $batch rounds of reads and writes."""
    rounds = math.ceil(math.ceil(devices / float(GRAPH_BATCH)) / GRAPH_BATCHES_IN_FLIGHT)
    phases = 2 if writes else 1  # read, then write
    return startup + LATENCY + window_seconds(writes, GRAPH_WRITES) + phases * rounds * LATENCY


class Runner:
    """Runs playbooks with the emulators' credentials in the environment; times them."""

    def __init__(self, feishu, graph, scratch):
        self.scratch = scratch
        self.peak_rss_mb = 0.0
        self.bin = os.path.dirname(sys.executable)
        self.env = dict(os.environ)
        self.env.update({
            "ANSIBLE_COLLECTIONS_PATH": os.environ.get("ANSIBLE_COLLECTIONS_PATH",
                                                       os.path.join(ROOT, "build", "collections")),
            "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCALHOST_WARNING": "0", "ANSIBLE_RETRY_FILES_ENABLED": "0",
            # An inventory source that fails must fail the run, not leave an empty inventory.
            "ANSIBLE_INVENTORY_UNPARSED_FAILED": "1",
            "FEISHU_BASE_URL": feishu.url, "FEISHU_APP_ID": feishu.app_id, "FEISHU_APP_SECRET": feishu.app_secret,
            "MSGRAPH_ENDPOINT": graph.url, "AZURE_AUTHORITY_HOST": graph.url, "AZURE_TENANT_ID": graph.tenant_id,
            "AZURE_CLIENT_ID": graph.client_id, "AZURE_CLIENT_SECRET": graph.client_secret,
        })
        self.fresh_quota()

    def fresh_quota(self):
        """New rate windows on the client side: the modules keep their shared quota state under the temp dir
        (TMPDIR), so each scenario gets its own, as the emulator's windows are cleared by its reset."""
        self.env["TMPDIR"] = tempfile.mkdtemp(prefix="quota-", dir=self.scratch)

    def fresh(self, sandbox, **size):
        """The same generated data (of another size, if given), rate windows on both sides cleared, no wire log."""
        sandbox.reset(seed=1, **size)
        sandbox.wire.clear()
        self.fresh_quota()

    def _scratch_file(self, suffix, write):
        with tempfile.NamedTemporaryFile("w", suffix=suffix, dir=self.scratch, delete=False) as handle:
            write(handle)
        return handle.name

    def start(self, playbook, extra_vars=None, check=False, inventory=None, limit=None, forks=None):
        """Start one ansible-playbook (a benchmark playbook, or a path); returns what wait() takes."""
        self.wall_started = time.time()
        vars_file = self._scratch_file(".json", lambda handle: json.dump(extra_vars or {}, handle))
        command = [os.path.join(self.bin, "ansible-playbook")] + (inventory or ["-i", "localhost,"])
        command += [os.path.join(HERE, playbook), "-e", "@" + vars_file] + (["--check"] if check else [])
        if limit is not None:
            # One host per line in a file (@file): a slice of 500 host names is too long for an argument.
            command += ["--limit", "@" + self._scratch_file(".limit", lambda handle: handle.write("\n".join(limit)))]
        if forks:
            command += ["--forks", str(forks)]
        proc = subprocess.Popen(command, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                universal_newlines=True)
        return playbook, proc, time.monotonic()

    def wait(self, started):
        playbook, proc, began = started
        output = proc.communicate()[0]
        elapsed = time.monotonic() - began
        self.wall_ended = time.time()
        # The largest resident set of any process this run started so far (the module, or the controller).
        self.peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
        if proc.returncode != 0:
            sys.stderr.write(output[-4000:])
            raise SystemExit("%s failed (exit %d)" % (playbook, proc.returncode))
        if any("failed=0" not in line for line in recap(output)):
            sys.stderr.write(output[-4000:])
            raise SystemExit("%s reported a failed task" % playbook)
        return elapsed

    def run(self, playbook, extra_vars=None, **options):
        return self.wait(self.start(playbook, extra_vars, **options))

    def run_together(self, runs):
        """Start every run at once; the seconds from the first start to the last end."""
        began, wall_started = time.monotonic(), time.time()
        started = [self.start(playbook, extra_vars, **options) for playbook, extra_vars, options in runs]
        for each in started:
            self.wait(each)
        self.wall_started = wall_started
        return time.monotonic() - began

    def timeline(self, sandbox):
        """Where the last run's time went: seconds before its first API call, between its first and last call,
        and after its last call (controller work: start-up, templating, results)."""
        times = [entry["time"] for entry in sandbox.wire.entries()]
        if not times:
            return dict(before_first_call=self.wall_ended - self.wall_started, api_calls=0.0, after_last_call=0.0)
        return dict(before_first_call=min(times) - self.wall_started, api_calls=max(times) - min(times),
                    after_last_call=self.wall_ended - max(times))


def recap(output):
    """The PLAY RECAP lines of ansible-playbook's output (host : ok=.. failed=..)."""
    return [line for line in output.split("PLAY RECAP", 1)[-1].splitlines() if " : ok=" in line]


def plain(value):
    """ansible-inventory --list output without its markers (values from an API are {"__ansible_unsafe": value})."""
    if isinstance(value, dict):
        if list(value) == ["__ansible_unsafe"]:
            return value["__ansible_unsafe"]
        return dict((key, plain(item)) for key, item in value.items())
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


class DeviceHosts:
    """The devices of one emulator as hosts of the collection's inventory plugin for it.

    The source turns the plugin's cache on: ansible-inventory reads the directory once (the sync, as AWX's
    inventory update does before a job) and the playbook runs after it load the hosts from the cache, with
    no API call. load_seconds is a bare ansible-playbook start-up with that inventory loaded.
    """

    PLUGINS = {"feishu": ("fleetguard.devices.feishu_device_records", "feishu_device_records", "feishu_device_record_id"),
               "msgraph": ("fleetguard.devices.msgraph_devices", "msgraph_devices", "msgraph_id")}

    def __init__(self, runner, directory, sandbox):
        plugin, source_name, self.id_var = self.PLUGINS[directory]
        self.group = source_name.replace("_device_records", "_devices")
        folder = tempfile.mkdtemp(prefix="inventory-", dir=runner.scratch)
        self.source = os.path.join(folder, "bench.%s.yml" % source_name)
        with open(self.source, "w") as handle:
            handle.write("plugin: %s\ncompose:\n  ansible_connection: \"'local'\"\n"
                         "cache: true\ncache_plugin: ansible.builtin.jsonfile\ncache_connection: %s\ncache_timeout: 0\n"
                         % (plugin, os.path.join(folder, "cache")))
        sandbox.wire.clear()
        began = time.monotonic()
        proc = subprocess.run([os.path.join(runner.bin, "ansible-inventory"), "-i", self.source, "--list"],
                              env=runner.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, check=False)
        self.sync_seconds = time.monotonic() - began
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr[-4000:])
            raise SystemExit("ansible-inventory with %s failed (exit %d)" % (plugin, proc.returncode))
        self.sync_calls = wire_stats(sandbox)["http_calls"]
        hostvars = plain(json.loads(proc.stdout))["_meta"]["hostvars"]
        self.host_of = dict((str(host_vars[self.id_var]), host) for host, host_vars in hostvars.items())
        sandbox.wire.clear()
        self.load_seconds = runner.run("noop.yml", inventory=self.args)
        assert len(sandbox.wire) == 0, "the playbook read the inventory from the API, not from the plugin's cache"

    @property
    def args(self):
        return ["-i", self.source]

    def hosts(self, ids):
        return [self.host_of[str(device_id)] for device_id in ids]


def wire_stats(sandbox):
    entries = sandbox.wire.entries()
    top_level = [e for e in entries if e.get("batch_item") is None]
    writes = [e for e in entries if e["method"] in ("PUT", "PATCH", "DELETE") and e["status"] and e["status"] < 300]
    return dict(http_calls=len(top_level), throttled=len([e for e in entries if e["status"] == 429]),
                writes=len(writes), token_calls=len([e for e in top_level if "token" in e["path"]]),
                list_calls=len([e for e in top_level if e["method"] == "GET" and e["path"].endswith("/device_records")]),
                get_calls=len([e for e in top_level if e["method"] == "GET" and "/device_records/" in e["path"]]))


def measured(seconds, sandbox, bound, devices, subset=None, fixed=0.0):
    """The run's numbers from the emulator's wire log; a run over `subset` of `devices` is scaled: `fixed`
    seconds stay, the rest (and the calls, 429s and writes) grows linearly."""
    stats = wire_stats(sandbox)
    stats.update(seconds=seconds, bound=bound, devices=devices)
    if subset and subset < devices:
        factor = devices / float(subset)
        stats.update(seconds=fixed + max(0.0, seconds - fixed) * factor, measured_seconds=seconds,
                     measured_devices=subset, scaled=True, http_calls=int(stats["http_calls"] * factor),
                     writes=int(stats["writes"] * factor), throttled=int(stats["throttled"] * factor))
    return stats


def feishu_writes(feishu):
    """How many PUTs the emulator applied to each record id."""
    return Counter(entry["path"].rsplit("/", 1)[-1] for entry in feishu.wire.entries(method="PUT")
                   if entry["status"] == 200 and entry["api_code"] == 0)


def graph_writes(graph):
    """How many PATCHes (alone or inside $batch) the emulator applied to each object id."""
    return Counter(entry["path"].rsplit("/", 1)[-1] for entry in graph.wire.entries(method="PATCH")
                   if entry["status"] == 204)


def feishu_audit(runner, feishu, startup, count, approach, subset=None):
    """(a) Check mode over `count` records by id: the collection reads them with list pages."""
    runner.fresh(feishu)
    with feishu.lock:
        ids = sorted(feishu.records)[:count]
    fixed, extra = startup, {}
    if approach == ONE_TASK:
        seconds = runner.run("fleetguard_feishu_audit.yml", dict(bench_ids=ids), check=True)
        subset = None
    elif approach == PER_HOST:
        hosts = DeviceHosts(runner, "feishu", feishu)
        fixed, extra = hosts.load_seconds, dict(inventory_sync_seconds=hosts.sync_seconds,
                                                inventory_sync_calls=hosts.sync_calls)
        seconds = runner.run("fleetguard_per_host_feishu_audit.yml", check=True, inventory=hosts.args,
                             limit=hosts.hosts(ids[:subset]), forks=FORKS)
    else:
        seconds = runner.run("naive_feishu_audit.yml", dict(bench_ids=ids[:subset]), check=True)
    assert not [e for e in feishu.wire.entries() if e["method"] in ("PUT", "DELETE")], "the audit wrote"
    pages = math.ceil(len(feishu.records) / float(FEISHU_PAGE))
    bound = startup + window_seconds(pages, FEISHU_LIST) + pages * LATENCY
    stats = measured(seconds, feishu, bound, count, subset, fixed)
    stats.update(extra, directory_pages=pages)
    if approach == ONE_TASK:
        stats["peak_rss_mb"] = runner.peak_rss_mb
    return stats


def feishu_quarantine(runner, feishu, startup, count, approach, rerun=False, subset=None):
    """(b) `count` records marked untrusted by device name, or the re-run of that."""
    if not rerun:
        runner.fresh(feishu)
    feishu.wire.clear()
    with feishu.lock:
        targets = sorted(r["device_name"] for r in feishu.records.values()
                         if r.get("device_status", 0) != FEISHU_UNTRUSTED or rerun)[:count]
        record_of = dict((r["device_name"], rid) for rid, r in feishu.records.items())
    if approach == ONE_TASK:
        subset = None
    names = targets[:subset]
    fixed, extra = startup, {}
    if approach == ONE_TASK:
        seconds = runner.run("fleetguard_feishu.yml", dict(bench_names=names))
    elif approach == PER_HOST:
        hosts = DeviceHosts(runner, "feishu", feishu)
        fixed, extra = hosts.load_seconds, dict(inventory_sync_seconds=hosts.sync_seconds,
                                                inventory_sync_calls=hosts.sync_calls)
        seconds = runner.run("fleetguard_per_host_feishu.yml", inventory=hosts.args,
                             limit=hosts.hosts(record_of[name] for name in names), forks=FORKS)
    else:
        seconds = runner.run("naive_feishu.yml", dict(bench_names=names))
    with feishu.lock:
        done = [r for r in feishu.records.values()
                if r["device_name"] in names and r.get("device_status") == FEISHU_UNTRUSTED]
    assert len(done) == len(names), "%s left records behind" % approach
    written = feishu_writes(feishu)
    assert not rerun or not written, "the re-run wrote"
    assert max(written.values() or [1]) == 1, "%s wrote a record twice" % approach
    bound = feishu_bound(startup, len(feishu.records), count, 0 if rerun else count)
    stats = measured(seconds, feishu, bound, count, subset, fixed)
    stats.update(extra)
    return stats


def graph_quarantine(runner, graph, startup, count, approach, rerun=False, subset=None):
    """(c) `count` devices disabled and tagged by object id, or the re-run of that."""
    if not rerun:
        runner.fresh(graph)
    graph.wire.clear()
    with graph.lock:
        # App-only callers may disable only Windows devices.
        targets = sorted(oid for oid, device in graph.devices.items()
                         if (device.get("operatingSystem") or "").lower().startswith("windows"))[:count]
    assert len(targets) == count, "the sandbox has too few Windows devices"
    if approach == ONE_TASK:
        subset = None
    ids = targets[:subset]
    fixed, extra = startup, {}
    if approach == ONE_TASK:
        seconds = runner.run("fleetguard_msgraph.yml", dict(bench_ids=ids, bench_tag=TAG))
    elif approach == PER_HOST:
        hosts = DeviceHosts(runner, "msgraph", graph)
        fixed, extra = hosts.load_seconds, dict(inventory_sync_seconds=hosts.sync_seconds,
                                                inventory_sync_calls=hosts.sync_calls)
        seconds = runner.run("fleetguard_per_host_msgraph.yml", dict(bench_tag=TAG), inventory=hosts.args,
                             limit=hosts.hosts(ids), forks=FORKS)
    else:
        seconds = runner.run("naive_msgraph.yml", dict(bench_ids=ids, bench_tag=TAG))
    with graph.lock:
        done = [oid for oid in ids if graph.devices[oid]["extensionAttributes"]["extensionAttribute14"] == TAG
                and graph.devices[oid]["accountEnabled"] is False]
    assert len(done) == len(ids), "%s left devices behind" % approach
    written = graph_writes(graph)
    assert not rerun or not written, "the re-run wrote"
    assert max(written.values() or [1]) == 1, "%s wrote a device twice" % approach
    bound = graph_bound(startup, count, 0 if rerun else count)
    stats = measured(seconds, graph, bound, count, subset, fixed)
    stats.update(extra)
    return stats


def one_device(runner, feishu, startup, approach):
    """(d) One record by name, collection against uri."""
    return feishu_quarantine(runner, feishu, startup, 1, approach, subset=1)


def sliced_quarantine(runner, sandbox, directory, startup, count):
    """(e) `count` devices quarantined with playbooks/quarantine.yml: first in its localhost form (one task per
    directory, the identifiers as extra variables), then, from the same data, in its host form over the
    devices as inventory hosts, in two concurrent slices. Each device must be written exactly once across the
    slices, and the slices must leave the same end state as the one task. Returns (one task, slices)."""
    feishu = directory == "feishu"
    size = dict(records=count) if feishu else dict(devices=count)
    playbook = os.path.join(ROOT, "playbooks", "quarantine.yml")
    extra_vars = dict(quarantine_reason=QUARANTINE_REASON)
    if not feishu:
        extra_vars["quarantine_disable_accounts"] = False  # app-only callers may disable only Windows devices
    written_by = feishu_writes if feishu else graph_writes

    def to_write():
        """The ids the quarantine must write (the others already are in the quarantined state)."""
        with sandbox.lock:
            if feishu:
                return sorted(rid for rid, r in sandbox.records.items() if r.get("device_status") != FEISHU_UNTRUSTED)
            attribute, tag = QUARANTINE_TAG
            return sorted(oid for oid, d in sandbox.devices.items() if d["extensionAttributes"].get(attribute) != tag)

    def end_state():
        with sandbox.lock:
            if feishu:
                return sorted(rid for rid, r in sandbox.records.items() if r.get("device_status") == FEISHU_UNTRUSTED)
            attribute, tag = QUARANTINE_TAG
            return sorted(oid for oid, d in sandbox.devices.items() if d["extensionAttributes"].get(attribute) == tag)

    runner.fresh(sandbox, **size)
    with sandbox.lock:
        ids = sorted(sandbox.records if feishu else sandbox.devices)
    expected = to_write()
    bound = (feishu_bound(startup, count, count, len(expected), by_id=True) if feishu
             else graph_bound(startup, count, len(expected)))
    ids_var = "quarantine_feishu_device_record_ids" if feishu else "quarantine_msgraph_ids"
    seconds = runner.run(playbook, dict(extra_vars, **{ids_var: ids}))
    assert written_by(sandbox) == Counter(expected), "the one task did not write each device exactly once"
    assert end_state() == ids, "the one task left devices behind"
    one_task = measured(seconds, sandbox, bound, count)
    one_task["timeline"] = runner.timeline(sandbox)

    runner.fresh(sandbox, **size)
    assert to_write() == expected
    hosts = DeviceHosts(runner, directory, sandbox)
    assert sorted(hosts.host_of) == ids, "the inventory does not hold every device as a host"
    names = sorted(hosts.hosts(ids))
    slices = [names[index::SLICES] for index in range(SLICES)]  # disjoint, as AWX slices an inventory
    runner.fresh_quota()
    host_form = dict(extra_vars, quarantine_targets=hosts.group)
    seconds = runner.run_together([(playbook, host_form, dict(inventory=hosts.args, limit=hosts_of_slice))
                                   for hosts_of_slice in slices])
    written = written_by(sandbox)
    twice = sorted(device for device, times in written.items() if times > 1)
    assert not twice, "%d devices written by more than one slice, or twice: %s" % (len(twice), ", ".join(twice[:5]))
    assert written == Counter(expected), "the slices wrote %d devices, the one task %d" % (len(written), len(expected))
    assert end_state() == ids, "the slices left devices behind"
    sliced = measured(seconds, sandbox, bound, count)
    sliced["timeline"] = runner.timeline(sandbox)
    sliced.update(directory=directory, vs_one_task=seconds / one_task["seconds"], written_once=len(written), slices=SLICES,
                  slice_hosts=[len(hosts_of_slice) for hosts_of_slice in slices], inventory_sync_seconds=hosts.sync_seconds,
                  inventory_sync_calls=hosts.sync_calls, inventory_load_seconds=hosts.load_seconds)
    return one_task, sliced


def bare_startup(runner):
    """ansible-playbook with one no-op task: the floor under every playbook run."""
    return min(runner.run("noop.yml") for dummy in range(2))


def targets(results):
    """The issue's targets, each with the measured value and whether it was met ([] for what did not run)."""
    def row(scenario_prefix, approach, rerun=False):
        return next((r for r in results if r["scenario"].startswith(scenario_prefix) and r["approach"] == approach
                     and ("re-run" in r["scenario"]) == rerun), None)

    checks = []

    def check(name, value, met, shown):
        checks.append(dict(target=name, value=value, met=bool(met), shown=shown))

    audit, audit_uri = row("(a)", ONE_TASK), row("(a)", URI)
    if audit:
        ratio = audit["seconds"] / audit["bound"]
        check("(a) <= 1.2x bound", ratio, ratio <= 1.2, "%.2fx" % ratio)
        if "peak_rss_mb" in audit:
            check("(a) peak RSS < 200 MB", audit["peak_rss_mb"], audit["peak_rss_mb"] < 200, "%.0f MB" % audit["peak_rss_mb"])
    if audit and audit_uri:
        speedup = audit_uri["seconds"] / audit["seconds"]
        check("(a) >= 100x faster than the uri loop", speedup, speedup >= 100, "%.0fx" % speedup)
    for prefix, limit in (("(b)", 1.1), ("(c)", 1.5)):
        first, rerun = row(prefix, ONE_TASK), row(prefix, ONE_TASK, rerun=True)
        if first:
            ratio = first["seconds"] / first["bound"]
            check("%s <= %.1fx bound" % (prefix, limit), ratio, ratio <= limit, "%.2fx" % ratio)
        if rerun:
            check("%s re-run 0 writes" % prefix, rerun["writes"], rerun["writes"] == 0, "%d writes" % rerun["writes"])
    graph = row("(c)", ONE_TASK)
    if graph:
        # A throttling error would have failed the run (Runner.wait); what is left to show is the 429 count.
        check("(c) 0 throttling errors surfaced", graph["throttled"], True, "0 errors, %d 429s" % graph["throttled"])
    one, one_uri = row("(d)", ONE_TASK), row("(d)", URI)
    if one and one_uri:
        ratio = one["seconds"] / one_uri["seconds"]
        check("(d) <= 1.0x uri", ratio, ratio <= 1.0, "%.2fx" % ratio)
    for sliced in (r for r in results if r["approach"] == SLICED):
        label = sliced["scenario"].split(" as hosts")[0]
        check("%s written exactly once across slices" % label, sliced["written_once"], True,
              "%d devices, each once" % sliced["written_once"])
        check("%s <= 1.3x the one-task time" % label, sliced["vs_one_task"], sliced["vs_one_task"] <= 1.3,
              "%.2fx" % sliced["vs_one_task"])
        check("%s 0 throttling errors surfaced" % label, sliced["throttled"], True,
              "0 errors, %d 429s" % sliced["throttled"])
    return checks


def phases(timeline):
    return " / ".join("%.1f" % timeline[name] for name in ("before_first_call", "api_calls", "after_last_call"))


def note(text):
    """A note under the table: lines of at most 110 characters, the ones after the first indented."""
    return textwrap.wrap(text, width=110, subsequent_indent="  ", break_on_hyphens=False)


def table(results, startup, with_targets=True):
    lines = ["bare ansible-playbook start-up: %.2f s; emulators: published limits, %d ms latency per call"
             % (startup, LATENCY * 1000), ""]
    header = "%-46s %-14s %9s %6s %5s %6s %9s %13s" % (
        "scenario", "approach", "seconds", "calls", "429s", "writes", "vs bound", "vs uri loop")
    lines += [header, "-" * len(header)]
    for stats in results:
        naive = next((r for r in results if r["scenario"] == stats["scenario"] and r["approach"] == URI), None)
        speedup = "%.1fx faster" % (naive["seconds"] / stats["seconds"]) if naive and stats["approach"] != URI else "-"
        approach = LABELS[stats["approach"]] + ("*" if stats.get("scaled") else "")
        lines.append("%-46s %-14s %9.1f %6d %5d %6d %8.2fx %13s" % (
            stats["scenario"], approach, stats["seconds"], stats["http_calls"], stats["throttled"], stats["writes"],
            stats["seconds"] / stats["bound"], speedup))
    peak = [r["peak_rss_mb"] for r in results if "peak_rss_mb" in r]
    lines += ["", "'vs bound': the run's time over the least time the APIs' limits and the calls' latency allow,",
              "plus a bare ansible-playbook start-up (1.00x = the bound)."]
    scaled = [r for r in results if r.get("scaled")]
    if scaled:
        lines += note("* measured on %s devices and scaled: the start-up (per host: with the inventory loaded) stays,"
                      " the rest grows linearly." % ", ".join(sorted(set(str(r["measured_devices"]) for r in scaled))))
    per_host = [r for r in results if r["approach"] == PER_HOST]
    if per_host:
        lines += note("'%s': the devices are inventory hosts of the collection's inventory plugin, read once by"
                      " ansible-inventory into the plugin's cache (not timed: %s), then the module once per host,"
                      " --forks %d." % (LABELS[PER_HOST], ", ".join("%.1f s" % r["inventory_sync_seconds"] for r in per_host),
                                        FORKS))
    for sliced in (r for r in results if r["approach"] == SLICED):
        one = next(r for r in results if r["scenario"] == sliced["scenario"] and r["approach"] == ONE_TASK)
        lines += note(
            "%s: playbooks/quarantine.yml%s in its host form, %d concurrent ansible-playbook processes with --limit over"
            " disjoint halves of the hosts (%s): %.1f s against %.1f s for its one-task (localhost) form = %.2fx;"
            " each of %d devices written exactly once, no failed task, %d 429s. Inventory sync before (not timed, as"
            " AWX's inventory update): %.1f s, %d calls; start-up with the %d hosts loaded: %.2f s. Before the first"
            " API call / from the first to the last / after the last: slices %s s, one task %s s." % (
                sliced["scenario"].split(",")[0], " (tag only)" if sliced["directory"] == "msgraph" else "", SLICES,
                " + ".join(str(n) for n in sliced["slice_hosts"]), sliced["seconds"], one["seconds"],
                sliced["vs_one_task"], sliced["written_once"], sliced["throttled"], sliced["inventory_sync_seconds"],
                sliced["inventory_sync_calls"], sliced["devices"], sliced["inventory_load_seconds"],
                phases(sliced["timeline"]), phases(one["timeline"])))
    if peak:
        lines.append("Peak resident memory of any process of the audit run (module or controller): %.0f MB." % peak[0])
    checks = targets(results) if with_targets else []
    if checks:
        lines += ["", "Targets (issue 9):"]
        lines += ["  %-58s %-22s %s" % (c["target"], c["shown"], "met" if c["met"] else "MISSED") for c in checks]
    return "\n".join(lines)


def chart(results, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is missing: no chart (make benchmark installs it)")
        return False
    scenarios = list(dict.fromkeys(r["scenario"] for r in results))
    approaches = [a for a in (ONE_TASK, PER_HOST, SLICED, URI) if any(r["approach"] == a for r in results)]
    figure, axis = plt.subplots(figsize=(12, 1.8 + 0.9 * len(scenarios)))
    height = 0.8 / (len(approaches) + 1)
    for index, approach in enumerate(approaches + ["bound"]):
        values = []
        for scenario in scenarios:
            row = next((r for r in results if r["scenario"] == scenario and r["approach"] == approach), None)
            if approach == "bound":
                values.append(next(r for r in results if r["scenario"] == scenario)["bound"])
            else:
                values.append(row["seconds"] if row else 0)
        positions = [n + index * height for n in range(len(scenarios))]
        label = LEGEND.get(approach, "bound (limits + latency + start-up)")
        if approach in (PER_HOST, URI):
            label += " (scaled from a subset)"
        bars = axis.barh(positions, values, height=height, label=label)
        axis.bar_label(bars, labels=["%.1f" % v if v else "" for v in values], fontsize=7, padding=2)
    axis.set_yticks([n + height * len(approaches) / 2 for n in range(len(scenarios))])
    axis.set_yticklabels(scenarios, fontsize=8)
    axis.set_xscale("log")
    axis.set_xlabel("seconds (log scale)")
    axis.invert_yaxis()
    # Under the plot, where no bar can hide behind it.
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.07), ncol=2, fontsize=8, frameon=False)
    axis.set_title("fleetguard.devices vs ansible.builtin.uri vs the APIs' bound (%d ms latency)" % (LATENCY * 1000))
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def environment(args):
    try:
        from ansible.release import __version__ as ansible_core
    except ImportError:  # pragma: no cover - run.py runs in the venv that has ansible-core
        ansible_core = None
    return dict(generated=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), python=platform.python_version(),
                ansible_core=ansible_core, cpus=os.cpu_count(), platform=platform.platform(),
                sizes=dict(audit_records=args.audit_records, records=args.records, devices=args.devices,
                           subset=args.uri_subset))


def smoke_checks(results, args, feishu_size):
    """Call counts as designed; no timing."""
    def row(prefix, approach, rerun=False):
        return next(r for r in results if r["scenario"].startswith(prefix) and r["approach"] == approach
                    and ("re-run" in r["scenario"]) == rerun)

    audit = row("(a)", ONE_TASK)
    assert (audit["token_calls"], audit["list_calls"]) == (1, audit["directory_pages"]), audit
    assert all(r["throttled"] == 0 for r in results if r["approach"] in (ONE_TASK, PER_HOST)), \
        "the collection provoked 429s"
    assert [r["writes"] for r in results if "re-run" in r["scenario"]] == [0, 0], "a re-run wrote"
    per_host = [r for r in results if r["approach"] == PER_HOST]
    for stats in per_host:
        # The module once per host: the calls grow with the hosts, nothing is read from the directory as a whole.
        assert stats["measured_devices"] == args.uri_subset and stats["list_calls"] == 0, stats
        assert stats["writes"] == (0 if stats["scenario"].startswith("(a)") else stats["devices"]), stats
    for sliced in (r for r in results if r["approach"] == SLICED):
        one = next(r for r in results if r["scenario"] == sliced["scenario"] and r["approach"] == ONE_TASK)
        # The same writes; each slice logs in as often as the one task (once per module call) and reads no more.
        assert sliced["writes"] == one["writes"] == sliced["written_once"], (sliced, one)
        assert sliced["token_calls"] == SLICES * one["token_calls"], (sliced, one)
        assert sliced["list_calls"] <= SLICES * one["list_calls"] and sliced["get_calls"] <= one["get_calls"], (sliced, one)
    print("\nsmoke: call counts as designed (audit of %d of %d records = 1 token + %d list calls; per host: %s;"
          " slices: each device written once, as many logins per slice as the one task), no 429s, re-runs wrote nothing"
          % (args.audit_records, feishu_size, audit["directory_pages"],
             ", ".join("%d calls for %d hosts" % (r["http_calls"] * r["measured_devices"] // r["devices"],
                                                  r["measured_devices"]) for r in per_host)))


def main():
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

    feishu_size = max(args.audit_records, args.records + 200)
    feishu = FeishuSandbox(records=feishu_size, seed=1).start()
    graph = GraphSandbox(devices=args.devices * 3 + 60, seed=1).start()
    feishu.latency = graph.latency = LATENCY
    scratch = tempfile.mkdtemp(prefix="fleetguard-benchmark-")
    runner = Runner(feishu, graph, scratch)
    approaches = [ONE_TASK, PER_HOST] + ([] if args.smoke else [URI])
    results = []

    def record(label, stats, approach):
        stats.update(scenario=label, approach=approach)
        results.append(stats)
        print("  %-46s %-14s %7.1f s  %5d calls %4d writes %3d 429s%s" % (
            label, LABELS[approach], stats["seconds"], stats["http_calls"], stats["writes"],
            stats["throttled"], " (scaled from %d)" % stats["measured_devices"] if stats.get("scaled") else ""),
            flush=True)

    try:
        startup = bare_startup(runner)
        print("  bare ansible-playbook start-up: %.2f s" % startup, flush=True)
        # Smoke: the per-host machinery (sync, cache, --limit, forks, scaling) is proven by (b) and (c).
        for approach in (a for a in approaches if not (args.smoke and a == PER_HOST)):
            record("(a) check-mode audit of %d feishu records" % args.audit_records,
                   feishu_audit(runner, feishu, startup, args.audit_records, approach, args.uri_subset), approach)
        for approach in approaches:
            record("(b) %d feishu records quarantined" % args.records,
                   feishu_quarantine(runner, feishu, startup, args.records, approach, subset=args.uri_subset), approach)
            if approach == ONE_TASK:
                record("(b) re-run of the feishu quarantine",
                       feishu_quarantine(runner, feishu, startup, args.records, approach, rerun=True), approach)
        for approach in approaches:
            record("(c) %d graph devices disabled and tagged" % args.devices,
                   graph_quarantine(runner, graph, startup, args.devices, approach, subset=args.uri_subset), approach)
            if approach == ONE_TASK:
                record("(c) re-run of the graph quarantine",
                       graph_quarantine(runner, graph, startup, args.devices, approach, rerun=True), approach)
        if not args.smoke:
            for approach in (ONE_TASK, URI):
                record("(d) one feishu record", one_device(runner, feishu, startup, approach), approach)
        for directory, sandbox, count, what in (("feishu", feishu, args.records, "feishu records"),
                                                ("msgraph", graph, args.devices, "graph devices")):
            label = "(e) %d %s as hosts, %d slices" % (count, what, SLICES)
            one_task, sliced = sliced_quarantine(runner, sandbox, directory, startup, count)
            record(label, one_task, ONE_TASK)
            record(label, sliced, SLICED)
    finally:
        feishu.stop()
        graph.stop()
        shutil.rmtree(scratch, ignore_errors=True)

    print()
    print(table(results, startup, with_targets=not args.smoke))  # smoke sizes say nothing about the targets
    if args.smoke:
        smoke_checks(results, args, feishu_size)
        return
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


if __name__ == "__main__":
    main()
