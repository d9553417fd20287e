"""The benchmark's scenarios: ansible-playbook runs of each approach against the emulators, timed, their calls
counted from the emulators' wire logs and their end state checked (see benchmarks/run.py)."""

import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter

from bounds import (FEISHU_LIST, FEISHU_PAGE, FEISHU_UNTRUSTED, LATENCY, QUARANTINE_REASON, QUARANTINE_TAG, TAG,
                    feishu_bound, graph_bound, window_seconds)
from tests.ansible_output import plain  # the repository root is on sys.path (run.py puts it there)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

FORKS = 10
SLICES = 2

ONE_TASK, PER_HOST, URI, SLICED = "fleetguard", "fleetguard per host", "ansible.builtin.uri loop", "fleetguard slices"
LABELS = {ONE_TASK: "collection", PER_HOST: "per host f%d" % FORKS, URI: "uri loop", SLICED: "%d slices" % SLICES}
LEGEND = {ONE_TASK: "collection (one task)", PER_HOST: "collection per host via the inventory (forks %d)" % FORKS,
          URI: "ansible.builtin.uri loop", SLICED: "collection, host form in %d concurrent slices" % SLICES}


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
