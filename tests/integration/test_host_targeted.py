"""The playbooks' host form: devices as inventory hosts of the inventory plugins, one role run (one module call per
directory, or per desired state) per play batch, so --limit, serial batches and AWX job slices partition them.

Real ansible-playbook and the inventory plugins against the sandboxes. The sandboxes are small and run without
rate limits, except where the limits are the point (concurrent slices).
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from ansible_collections.fleetguard.devices.plugins.plugin_utils.device_inventory import safe_host_name
from sandbox.feishu import FeishuSandbox
from sandbox.msgraph import GraphSandbox

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FEISHU_SOURCE = """
plugin: fleetguard.devices.feishu_device_records
keyed_groups:
  - key: feishu_device_system
    prefix: feishu_os
compose:
  ansible_connection: "'local'"
"""

GRAPH_SOURCE = """
plugin: fleetguard.devices.msgraph_devices
keyed_groups:
  - key: msgraph_operating_system | lower
    prefix: msgraph_os
compose:
  ansible_connection: "'local'"
"""

FEISHU_UNTRUSTED, FEISHU_TRUSTED = 2, 1
WINDOWS_SYSTEM, MACOS_SYSTEM = 1, 2


@pytest.fixture
def feishu(request):
    """Overrides conftest's: 12 records, no rate limits unless the test asks (indirect parametrization)."""
    options = dict(dict(records=12, seed=7, rate_limits=False), **getattr(request, "param", {}))
    sandbox = FeishuSandbox(**options).start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def graph(request):
    """Overrides conftest's: 12 devices, no throttling unless the test asks (indirect parametrization)."""
    options = dict(dict(devices=12, seed=11, throttling=False), **getattr(request, "param", {}))
    sandbox = GraphSandbox(**options).start()
    yield sandbox
    sandbox.stop()


class Run:
    def __init__(self, returncode, stdout, results):
        self.returncode = returncode
        self.stdout = stdout
        self.results = results

    def tasks(self, name):
        """Every result of the task with this name (a run_once task has one per play batch)."""
        return [entry for entry in self.results if entry["task"].endswith(name)]

    def task(self, name):
        found = self.tasks(name)
        assert len(found) == 1, "task %r ran %d times; output:\n%s" % (name, len(found), self.stdout[-3000:])
        return found[0]

    @property
    def failed(self):
        return [entry for entry in self.results if entry["status"] == "failed"]


class Pending:
    def __init__(self, proc, results_file):
        self.proc = proc
        self.results_file = results_file

    def wait(self):
        stdout = self.proc.communicate(timeout=600)[0]
        results = []
        if self.results_file.exists():
            results = [json.loads(line) for line in self.results_file.read_text().splitlines() if line.strip()]
        return Run(self.proc.returncode, stdout, results)


class Playbooks:
    """Runs the collection's playbooks with the inventory plugins' sources (or another inventory) in tmp_path."""

    def __init__(self, env, tmp_path):
        self.env = env
        self.tmp_path = tmp_path
        self.count = 0
        (tmp_path / "devices.feishu_device_records.yml").write_text(textwrap.dedent(FEISHU_SOURCE))
        (tmp_path / "devices.msgraph_devices.yml").write_text(textwrap.dedent(GRAPH_SOURCE))
        self.devices = ["-i", str(tmp_path / "devices.feishu_device_records.yml"),
                        "-i", str(tmp_path / "devices.msgraph_devices.yml")]

    def group_vars(self, group, values):
        """group_vars/<group>.yml beside the inventory sources."""
        folder = self.tmp_path / "group_vars"
        folder.mkdir(exist_ok=True)
        (folder / ("%s.yml" % group)).write_text(json.dumps(values))

    def start(self, playbook, extra_vars=None, limit=None, inventory=None, flags=()):
        self.count += 1
        results_file = self.tmp_path / ("results-%d.jsonl" % self.count)
        command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook")]
        command += inventory if inventory is not None else self.devices
        command.append(os.path.join(REPO, "playbooks", playbook + ".yml"))
        if extra_vars:
            command += ["-e", json.dumps(extra_vars)]
        if limit:
            command += ["--limit", ",".join(limit)]
        command += list(flags)
        env = dict(self.env, RECORD_RESULTS_FILE=str(results_file))
        proc = subprocess.Popen(command, env=env, cwd=str(self.tmp_path), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, universal_newlines=True)
        return Pending(proc, results_file)

    def run(self, playbook, extra_vars=None, limit=None, inventory=None, flags=()):
        return self.start(playbook, extra_vars, limit, inventory, flags).wait()


@pytest.fixture
def playbooks(playbook, feishu, tmp_path):
    env = dict(playbook.env)
    env["FEISHU_BASE_URL"] = feishu.url           # the modules and the inventory plugin read it, as AWX injects it
    env["ANSIBLE_INVENTORY_UNPARSED_FAILED"] = "1"  # a source that fails must fail the run
    env["ANSIBLE_LOCALHOST_WARNING"] = "0"
    return Playbooks(env, tmp_path)


def records_where(feishu, **fields):
    """{device_name: record id} of the Feishu records whose fields have these values."""
    with feishu.lock:
        return dict((r["device_name"], rid) for rid, r in feishu.records.items()
                    if all(r.get(name, 0) == value for name, value in fields.items()))


def devices_where(graph, **properties):
    """{host name: object id} of the Graph devices whose properties have these values (the inventory plugin names
    a host after its display name, made safe for host patterns: "Galaxy S23 (Omar)" is Galaxy_S23_Omar)."""
    with graph.lock:
        return dict((safe_host_name(d["displayName"]), oid) for oid, d in graph.devices.items()
                    if all(d.get(name) == value for name, value in properties.items()))


def feishu_writes(feishu):
    """Record ids of the PUTs the sandbox applied, one per write."""
    return sorted(entry["path"].rsplit("/", 1)[-1] for entry in feishu.wire.entries(method="PUT")
                  if entry["status"] == 200 and entry["api_code"] == 0)


def graph_writes(graph):
    """Object ids of the PATCHes the sandbox applied (alone or inside $batch), one per write."""
    return sorted(entry["path"].rsplit("/", 1)[-1] for entry in graph.wire.entries(method="PATCH")
                  if entry["status"] == 204)


def write_requests(feishu, graph):
    return [entry for sandbox in (feishu, graph) for entry in sandbox.wire.entries()
            if entry["method"] in ("PUT", "PATCH", "DELETE")]


def loop_items(run, task):
    """The loop items a run_once module task was called with, over every batch."""
    return [item["item"] for entry in run.tasks(task) for item in entry["result"].get("results", [])]


def test_host_form_quarantines_then_releases_exactly_the_limited_hosts_in_one_call_per_directory(
        playbooks, feishu, graph):
    records = records_where(feishu, device_status=FEISHU_TRUSTED)
    devices = devices_where(graph, operatingSystem="Windows", accountEnabled=True)
    chosen_records = sorted(records)[:3]
    chosen_devices = sorted(devices)[:2]
    limit = chosen_records + chosen_devices

    run = playbooks.run("quarantine", {"quarantine_reason": "INC-7", "quarantine_targets": "all"}, limit=limit)

    assert run.returncode == 0, run.stdout[-3000:]
    assert feishu_writes(feishu) == sorted(records[name] for name in chosen_records)
    assert graph_writes(graph) == sorted(devices[name] for name in chosen_devices)
    # One module call per directory, with the batch's ids (read from the hosts' vars once).
    assert loop_items(run, "Mark the Feishu device records untrusted") == [
        {"field": "device_record_id", "ids": [records[name] for name in chosen_records]}]
    assert loop_items(run, "Disable the Graph devices and write the quarantine tag") == [
        {"field": "id", "ids": [devices[name] for name in chosen_devices]}]
    with feishu.lock, graph.lock:
        assert [feishu.records[records[name]]["device_status"] for name in chosen_records] == [FEISHU_UNTRUSTED] * 3
        assert [graph.devices[devices[name]]["extensionAttributes"]["extensionAttribute15"]
                for name in chosen_devices] == ["quarantine:INC-7"] * 2
        assert sorted(oid for oid, d in graph.devices.items() if d["extensionAttributes"]["extensionAttribute15"]) \
            == sorted(devices[name] for name in chosen_devices)
        untouched = [rid for name, rid in records.items() if name not in chosen_records]
        assert all(feishu.records[rid]["device_status"] == FEISHU_TRUSTED for rid in untouched)

    feishu.wire.clear()
    graph.wire.clear()
    run = playbooks.run("release", {"release_targets": "all"}, limit=limit)

    assert run.returncode == 0, run.stdout[-3000:]
    assert feishu_writes(feishu) == sorted(records[name] for name in chosen_records)
    assert graph_writes(graph) == sorted(devices[name] for name in chosen_devices)
    with feishu.lock, graph.lock:
        assert [feishu.records[records[name]]["device_status"] for name in chosen_records] == [FEISHU_TRUSTED] * 3
        assert all(d["accountEnabled"] and not d["extensionAttributes"]["extensionAttribute15"]
                   for oid, d in graph.devices.items() if oid in devices.values())


LIMITS_ON = ({"records": 24, "rate_limits": True}, {"devices": 24, "throttling": True, "write_limits": {"app": (10, 1.0)}})


@pytest.mark.parametrize("feishu, graph", [LIMITS_ON], indirect=True, ids=["limits-on"])
def test_two_concurrent_slices_write_each_device_exactly_once_without_surfacing_throttling(playbooks, feishu, graph):
    records = records_where(feishu)
    devices = devices_where(graph)
    to_write = set(records.values()) - set(records_where(feishu, device_status=FEISHU_UNTRUSTED).values())
    hosts = sorted(records) + sorted(devices)
    slices = [hosts[0::2], hosts[1::2]]  # disjoint, as AWX slices an inventory
    extra_vars = {"quarantine_reason": "INC-8", "quarantine_targets": "all", "quarantine_disable_accounts": False}

    pending = [playbooks.start("quarantine", extra_vars, limit=hosts_of_slice) for hosts_of_slice in slices]
    runs = [job.wait() for job in pending]

    for run in runs:
        assert run.returncode == 0, run.stdout[-3000:]
        assert run.failed == []
    # Every device written by exactly one slice, exactly once; the sandbox's 429s never became an error.
    assert feishu_writes(feishu) == sorted(to_write)
    assert graph_writes(graph) == sorted(devices.values())
    # Each slice sends its 12 PATCHes in one $batch, more than the window of 10 holds: Graph did throttle.
    assert any(entry["status"] == 429 for entry in graph.wire.entries(method="PATCH"))
    assert sorted(records_where(feishu, device_status=FEISHU_UNTRUSTED).values()) == sorted(records.values())
    for run, hosts_of_slice in zip(runs, slices):
        (feishu_call,) = run.tasks("Mark the Feishu device records untrusted")
        (graph_call,) = run.tasks("Disable the Graph devices and write the quarantine tag")
        written = feishu_call["result"]["results"][0]["changed_records"] + graph_call["result"]["results"][0]["changed_devices"]
        expected = [records[h] for h in hosts_of_slice if records.get(h) in to_write]
        expected += [devices[h] for h in hosts_of_slice if h in devices]
        assert sorted(written) == sorted(expected)


def test_serial_batches_partition_the_devices_one_module_call_per_batch(playbooks, feishu):
    records = records_where(feishu, device_status=FEISHU_TRUSTED)
    chosen = sorted(records)[:5]

    run = playbooks.run("quarantine", {"quarantine_reason": "INC-9", "quarantine_targets": "feishu_devices",
                                       "quarantine_batch_size": 2}, limit=chosen)

    assert run.returncode == 0, run.stdout[-3000:]
    batches = [entry["result"]["ansible_facts"]["quarantine__inventory"]["hosts"]
               for entry in run.tasks("Read the device ids of the inventory hosts (host form; none in the localhost form)")]
    assert [len(batch) for batch in batches] == [2, 2, 1]
    assert sorted(host for batch in batches for host in batch) == chosen
    calls = loop_items(run, "Mark the Feishu device records untrusted")
    assert [call["ids"] for call in calls] == [[records[host] for host in batch] for batch in batches]
    assert feishu_writes(feishu) == sorted(records[host] for host in chosen)


def test_localhost_form_with_identifiers_as_extra_vars_still_works(playbooks, feishu, graph):
    record = sorted(records_where(feishu, device_status=FEISHU_TRUSTED).items())[0]
    device = sorted(devices_where(graph, operatingSystem="Windows", accountEnabled=True).items())[0]

    run = playbooks.run("quarantine", {"quarantine_reason": "INC-10", "quarantine_feishu_device_names": record[0],
                                       "quarantine_msgraph_display_names": [device[0]]},
                        inventory=["-i", "localhost,"])

    assert run.returncode == 0, run.stdout[-3000:]
    assert feishu_writes(feishu) == [record[1]]
    assert graph_writes(graph) == [device[1]]
    assert run.task("Report")["host"] == "localhost"


@pytest.mark.parametrize("name, extra_vars", [
    ("quarantine", {"quarantine_reason": "INC-11", "quarantine_feishu_device_names": "FG-LAPTOP-0001"}),
    ("release", {"release_feishu_device_names": ["FG-LAPTOP-0001"]}),
    ("audit", {"audit_baseline": [{"device_name": "FG-LAPTOP-0001", "device_status": "trusted"}]}),
])
def test_localhost_form_on_an_inventory_of_device_hosts_fails_before_any_request(
        playbooks, feishu, graph, name, extra_vars):
    run = playbooks.run(name, extra_vars)

    assert run.returncode != 0
    # The first task failed and nothing ran after it: only the inventory plugins' reads reached the sandboxes.
    assert [(entry["task"], entry["status"]) for entry in run.results] == [
        (entry["task"], "ok") for entry in run.results[:1]] + [
        ("Refuse the localhost form on an inventory of device hosts (before any request)", "failed")]
    message = run.results[-1]["result"]["msg"]
    assert "%s_targets=PATTERN" % name in message and "once per slice" in message
    assert write_requests(feishu, graph) == []


def test_localhost_form_also_sees_device_hosts_without_the_plugins_groups(playbooks, feishu, tmp_path):
    """An AWX smart inventory keeps hosts and their vars but not the plugins' groups."""
    (tmp_path / "smart.yml").write_text(json.dumps({"all": {"hosts": {
        "FG-LAPTOP-0001": {"feishu_device_record_id": "7400000000000000001"}}}}))

    run = playbooks.run("quarantine", {"quarantine_reason": "INC-12", "quarantine_feishu_device_names": "FG-LAPTOP-0001"},
                        inventory=["-i", str(tmp_path / "smart.yml")])

    assert run.returncode != 0
    assert run.failed[0]["task"] == "Refuse the localhost form on an inventory of device hosts (before any request)"
    assert len(feishu.wire) == 0


def test_host_form_refuses_identifier_variables_and_a_host_list_given_as_an_extra_variable(playbooks, feishu, graph):
    name = sorted(records_where(feishu))[0]

    mixed = playbooks.run("quarantine", {"quarantine_reason": "INC-13", "quarantine_targets": "feishu_devices",
                                         "quarantine_feishu_serial_numbers": "C02FG0001"}, limit=[name])
    forced = playbooks.run("quarantine", {"quarantine_reason": "INC-13", "quarantine_targets": "feishu_devices",
                                          "quarantine_inventory_hosts": [name]})

    assert mixed.returncode != 0
    assert mixed.failed[0]["task"].endswith("Check the inventory hosts (host form)")
    assert "Identifier variables given too: quarantine_feishu_serial_numbers" in mixed.failed[0]["result"]["msg"]
    assert forced.returncode != 0
    assert forced.failed[0]["task"].startswith("Refuse a host list given as an extra variable")
    assert "do not pass it as an extra variable" in forced.failed[0]["result"]["msg"]
    assert write_requests(feishu, graph) == []


def declare_posture(playbooks):
    """Posture by OS: Windows laptops trusted and company-owned, Macs trusted; Windows PCs enabled and tagged."""
    playbooks.group_vars("feishu_os_windows", {"feishu_desired_status": "trusted", "feishu_desired_ownership": "company"})
    playbooks.group_vars("feishu_os_macos", {"feishu_desired_status": "trusted"})
    playbooks.group_vars("msgraph_os_windows", {"msgraph_desired_account_enabled": True,
                                                "msgraph_desired_extension_attributes": {"extensionAttribute1": "posture:managed"}})


def test_enforce_posture_groups_hosts_by_desired_state_check_mode_writes_nothing_and_a_rerun_is_no_change(
        playbooks, feishu, graph):
    declare_posture(playbooks)
    windows = records_where(feishu, device_system=WINDOWS_SYSTEM)
    macs = records_where(feishu, device_system=MACOS_SYSTEM)
    pcs = devices_where(graph, operatingSystem="Windows")
    with feishu.lock:
        drifted_records = sorted(rid for rid in windows.values()
                                 if (feishu.records[rid]["device_status"], feishu.records[rid]["device_ownership"]) != (1, 2))
        drifted_records += sorted(rid for rid in macs.values() if feishu.records[rid]["device_status"] != 1)
    assert drifted_records and len(pcs) > 1

    check = playbooks.run("enforce_posture", flags=["--check", "--diff"])

    assert check.returncode == 0, check.stdout[-3000:]
    assert write_requests(feishu, graph) == []
    feishu_calls = loop_items(check, "Apply the Feishu posture (one call per distinct desired state)")
    assert sorted((json.dumps(call["desired"], sort_keys=True), sorted(call["ids"])) for call in feishu_calls) == sorted([
        ('{"device_ownership": "company", "device_status": "trusted"}', sorted(windows.values())),
        ('{"device_status": "trusted"}', sorted(macs.values()))])
    graph_calls = loop_items(check, "Apply the Graph posture (one call per distinct desired state)")
    assert [sorted(call["ids"]) for call in graph_calls] == [sorted(pcs.values())]
    (applied,) = check.tasks("Apply the Feishu posture (one call per distinct desired state)")
    predicted = sorted(rid for item in applied["result"]["results"] for rid in item["changed_records"])
    assert predicted == sorted(drifted_records)

    run = playbooks.run("enforce_posture", flags=["--diff"])

    assert run.returncode == 0, run.stdout[-3000:]
    assert feishu_writes(feishu) == sorted(drifted_records)
    assert graph_writes(graph) == sorted(pcs.values())
    with graph.lock:
        assert all(graph.devices[oid]["extensionAttributes"]["extensionAttribute1"] == "posture:managed" for oid in pcs.values())

    feishu.wire.clear()
    graph.wire.clear()
    rerun = playbooks.run("enforce_posture")

    assert rerun.returncode == 0, rerun.stdout[-3000:]
    assert write_requests(feishu, graph) == []
    assert not any(entry["result"].get("changed") for entry in rerun.results if entry["task"].startswith("Apply"))
    summary = rerun.task("Summarise the batch")["result"]["ansible_facts"]["enforce_posture_summary"]
    assert summary["feishu"]["changed"] == [] and summary["msgraph"]["changed"] == []
    assert sorted(summary["undeclared"]) == sorted(set(records_where(feishu)) - set(windows) - set(macs)
                                                   | set(devices_where(graph)) - set(pcs))


@pytest.mark.parametrize("batch_size", [0, 1], ids=["one-batch", "batches-of-one"])
def test_enforce_posture_refuses_a_malformed_declaration_before_any_request(playbooks, feishu, graph, batch_size):
    # With batches of one host, the malformed hosts come after others whose posture is sound: none may write first.
    declare_posture(playbooks)
    playbooks.group_vars("feishu_os_macos", {"feishu_desired_status": "trustworthy"})

    run = playbooks.run("enforce_posture", {"enforce_posture_batch_size": batch_size})

    assert run.returncode != 0
    assert [entry["task"] for entry in run.results][-1] == \
        "Stop before any request if a host is not a device, a declaration is malformed or two hosts disagree"
    message = run.failed[0]["result"]["msg"]
    assert "feishu_desired_status must be one of unknown, trusted, untrusted, not trustworthy" in message
    assert all(name in message for name in records_where(feishu, device_system=MACOS_SYSTEM))
    assert write_requests(feishu, graph) == []


def alias_inventory(playbooks, object_id, **posture):
    """A static inventory source with one more host, ALIAS-PC, naming a Graph device by its id in upper case
    (Graph compares GUIDs without case), declaring `posture`; listed after the plugins' sources."""
    path = playbooks.tmp_path / "alias.yml"
    host = dict(posture, msgraph_id=object_id.upper(), ansible_connection="local")
    path.write_text(json.dumps({"msgraph_devices": {"hosts": {"ALIAS-PC": host}}}))
    return playbooks.devices + ["-i", str(path)]


def test_enforce_posture_refuses_one_device_declared_two_ways_by_hosts_of_different_batches(playbooks, feishu, graph):
    declare_posture(playbooks)
    pc, object_id = sorted(devices_where(graph, operatingSystem="Windows").items())[0]
    inventory = alias_inventory(playbooks, object_id, msgraph_desired_account_enabled=False)

    run = playbooks.run("enforce_posture", {"enforce_posture_batch_size": 1}, inventory=inventory)

    assert run.returncode != 0
    assert write_requests(feishu, graph) == [], "a batch wrote before the conflict was found"
    message = run.failed[0]["result"]["msg"]
    assert "Graph device %s (ALIAS-PC names it %s)" % (object_id, object_id.upper()) in message, message
    assert "%s declares msgraph_desired_account_enabled=true, ALIAS-PC declares false" % pc in message, message


def test_enforce_posture_writes_a_device_two_hosts_declare_alike_once(playbooks, feishu, graph):
    declare_posture(playbooks)
    pcs = devices_where(graph, operatingSystem="Windows")
    pc, object_id = sorted(pcs.items())[0]
    inventory = alias_inventory(playbooks, object_id, msgraph_desired_account_enabled=True,
                                msgraph_desired_extension_attributes={"extensionAttribute1": "posture:managed"})
    with graph.lock:
        graph.devices[object_id]["accountEnabled"] = False

    check = playbooks.run("enforce_posture", {"enforce_posture_batch_size": 1}, inventory=inventory, flags=["--check"])
    assert check.returncode == 0, check.stdout[-3000:]
    predicted = [oid for entry in check.tasks("Apply the Graph posture (one call per distinct desired state)")
                 for item in entry["result"].get("results", []) for oid in item["changed_devices"]]
    assert predicted.count(object_id) == 1, predicted

    run = playbooks.run("enforce_posture", {"enforce_posture_batch_size": 1}, inventory=inventory)
    assert run.returncode == 0, run.stdout[-3000:]
    assert graph_writes(graph).count(object_id) == 1
    assert graph_writes(graph) == sorted(pcs.values())


def test_enforce_posture_refuses_an_extension_attribute_that_is_not_text_before_any_request(playbooks, feishu, graph):
    playbooks.group_vars("msgraph_os_windows", {"msgraph_desired_extension_attributes": {"extensionAttribute7": True}})

    run = playbooks.run("enforce_posture")

    assert run.returncode != 0
    assert write_requests(feishu, graph) == []
    message = run.failed[0]["result"]["msg"]
    assert "extension attribute extensionAttribute7 must be a string or null, not true" in message, message
    assert all(name in message for name in devices_where(graph, operatingSystem="Windows"))


def test_audit_host_form_compares_each_host_with_its_declared_posture_and_writes_nothing(
        playbooks, feishu, graph, tmp_path):
    declare_posture(playbooks)
    windows = records_where(feishu, device_system=WINDOWS_SYSTEM)
    pcs = devices_where(graph, operatingSystem="Windows")
    limit = sorted(windows) + sorted(pcs) + ["FG-IOS-0003"]

    run = playbooks.run("audit", {"audit_targets": "all", "audit_report_dir": str(tmp_path / "report")}, limit=limit)

    assert run.returncode == 0, run.stdout[-3000:]
    assert write_requests(feishu, graph) == []
    report = json.loads((tmp_path / "report" / "drift-report.json").read_text())
    assert report["baseline"]["inventory_hosts"] == len(limit)
    assert report["baseline"]["undeclared_hosts"] == ["FG-IOS-0003"]
    compared = sorted(entry["name"] for status in ("drifted", "in_sync") for entry in report[status])
    assert compared == sorted(windows) + sorted(pcs) and report["summary"]["entries"] == len(compared)
    assert all(entry["differences"] for entry in report["drifted"])
    # One call per directory and desired state.
    assert len(loop_items(run, "Compare the Feishu records")) == 1
    assert len(loop_items(run, "Compare the Graph devices")) == 1
