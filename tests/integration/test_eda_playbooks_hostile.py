"""Hostile events for the playbooks the rulebooks of extensions/eda run, against the emulators on 127.0.0.1.

ansible-rulebook's run_playbook writes its extra vars, the event under `ansible_eda.event`, with yaml.dump into the
private data dir's env/extravars, and ansible-runner hands that file to ansible-playbook as `-e @env/extravars`
(ansible_rulebook/action/run_playbook.py `_pre_process`, helper.py `collect_extra_vars`; ansible_runner/config/
runner.py). ansible-core loads an `-e @file` as trusted templates (utils/vars.py `load_extra_vars`), so every string
of an event is a template to ansible-playbook: a device name `{{ lookup('pipe', ...) }}`, chosen by the device's user,
runs on the controller if a playbook so much as reads it. These tests run the playbooks the same way, with a crafted
`-e @vars.yml` (fast); one test runs the real rulebook.
"""

import copy
import os
import re
import subprocess
import sys
import time
import uuid

import pytest
import yaml


GUID = "0f2c7d1e-5b1a-4c3e-9a7b-3d2e1f0a9b8c"


def template_name(marker):
    """A device name a device's user can choose: renders to `injected!` and creates `marker` if templated."""
    return "{{ lookup('pipe', 'touch %s') }}{{ 'inject' ~ 'ed!' }}" % marker


class Run:
    def __init__(self, returncode, stdout):
        self.returncode = returncode
        self.stdout = stdout


class Playbooks:
    """ansible-playbook of the collection's playbooks with `-e @file`, as ansible-runner runs them."""

    def __init__(self, tmp_path, env, graph, feishu):
        self.tmp_path = tmp_path
        self.env = env
        self.graph = graph
        self.feishu = feishu
        self.count = 0

    def run(self, playbook, event=None, eda=True, **extra_vars):
        self.count += 1
        base = self.tmp_path / ("playbook%d" % self.count)
        base.mkdir()
        variables = dict(extra_vars)
        if eda:
            variables["ansible_eda"] = {"ruleset": "hostile", "rule": "hostile", "event": event}
        (base / "extravars").write_text(yaml.dump(variables))  # as ansible-rulebook writes env/extravars
        (base / "inventory").write_text("localhost ansible_connection=local\n")
        command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(base / "inventory"),
                   "fleetguard.devices." + playbook, "-e", "@" + str(base / "extravars")]
        proc = subprocess.run(command, env=self.env, cwd=str(base), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=300, check=False)
        return Run(proc.returncode, proc.stdout)

    def graph_writes(self, since=0):
        return [entry for entry in self.graph.wire.entries(since=since) if entry["method"] in ("PATCH", "DELETE")]

    def graph_calls(self, since=0):
        return [entry for entry in self.graph.wire.entries(since=since) if "/devices" in entry["path"]]

    def feishu_writes(self, since=0):
        return [entry for entry in self.feishu.wire.entries(since=since) if entry["method"] in ("PUT", "DELETE")]

    def feishu_calls(self, since=0):
        return [entry for entry in self.feishu.wire.entries(since=since) if "device_records" in entry["path"]]


@pytest.fixture
def playbooks(tmp_path, playbook, graph, feishu):
    env = dict(playbook.env)
    env["FEISHU_BASE_URL"] = feishu.url
    env.pop("RECORD_RESULTS_FILE", None)
    return Playbooks(tmp_path, env, graph, feishu)


def graph_event(device, change="updated", changed=("accountEnabled",), previous=None, observed_at=None):
    """The event msgraph_device_changes emits for `device` (a dict of the emulator)."""
    tracked = ("accountEnabled", "isCompliant", "isManaged", "displayName", "operatingSystem", "trustType",
               "extensionAttributes")
    seen = copy.deepcopy(dict((name, device.get(name)) for name in ("id", "deviceId", "displayName") + tracked))
    return {"fleetguard": {
        "directory": "msgraph", "change": change, "id": device["id"], "device": seen, "changed": list(changed),
        "previous": dict(previous if previous is not None else {"accountEnabled": False}),
        "observed_at": observed_at or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }}


def feishu_event(record, change="updated", changed=("device_status",), previous=None, observed_at=None):
    """The event feishu_device_record_changes emits for `record` (a dict of the emulator), enums by name."""
    names = {0: "unknown", 1: "trusted", 2: "untrusted"}
    device = copy.deepcopy(record)
    device["device_status"] = names.get(record["device_status"], record["device_status"])
    return {"fleetguard": {
        "directory": "feishu", "change": change, "id": record["device_record_id"], "device": device,
        "changed": list(changed),
        "previous": dict(previous if previous is not None else {"device_status": "untrusted"}),
        "observed_at": observed_at or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }}


def windows_device(graph, **fields):
    with graph.lock:
        device = next(device for device in graph.devices.values() if device["operatingSystem"] == "Windows"
                      and not device["extensionAttributes"].get("extensionAttribute15"))
        extension = fields.pop("extensionAttributes", None)
        device.update(fields)
        if extension is not None:
            device["extensionAttributes"].update(extension)
    return device


def re_enabled_quarantined_device(graph, tag="quarantine:INC-7", **fields):
    return windows_device(graph, accountEnabled=True, extensionAttributes={"extensionAttribute15": tag}, **fields)


def trusted_record(feishu, **fields):
    with feishu.lock:
        record = next(record for record in feishu.records.values() if record.get("serial_number"))
        record.update(dict(device_status=1), **fields)
    return record


def last_seq(sandbox):
    entries = sandbox.wire.entries()
    return entries[-1]["seq"] if entries else 0


# --- Template injection: event data is never rendered ------------------------------------------------------------


def test_graph_device_name_chosen_by_its_user_is_never_rendered(playbooks, graph, tmp_path):
    marker = tmp_path / ("pwned-%s" % uuid.uuid4().hex)
    device = re_enabled_quarantined_device(graph, displayName=template_name(marker))
    event = graph_event(device, changed=("accountEnabled", "displayName"),
                        previous={"accountEnabled": False, "displayName": template_name(marker)})
    since = last_seq(graph)
    run = playbooks.run("keep_quarantined", event)
    assert run.returncode == 0, run.stdout
    assert not marker.exists(), "the device name ran on the controller"
    assert "injected!" not in run.stdout
    assert graph.devices[device["id"]]["accountEnabled"] is False
    assert len(playbooks.graph_writes(since)) == 1  # put back, once
    # The report is one line: what changed from what, when it was seen, what was done.
    assert re.search(r"updated accountEnabled, displayName, accountEnabled was false \(seen [0-9T:-]+Z\); put back [0-9]+ s after",
                     run.stdout), run.stdout[-2000:]


def test_feishu_device_name_chosen_by_its_user_is_never_rendered(playbooks, feishu, tmp_path):
    marker = tmp_path / ("pwned-%s" % uuid.uuid4().hex)
    record = trusted_record(feishu, device_name=template_name(marker))
    since = last_seq(feishu)
    # named by serial number: the playbook has to compare the record's identifiers with the list
    run = playbooks.run("keep_quarantined", feishu_event(record), keep_quarantined_feishu_records=[record["serial_number"]])
    assert run.returncode == 0, run.stdout
    assert not marker.exists(), "the device name ran on the controller"
    assert "injected!" not in run.stdout
    assert feishu.records[record["device_record_id"]]["device_status"] == 2
    assert len(playbooks.feishu_writes(since)) == 1


def test_feishu_record_named_by_a_template_device_name_is_matched_literally(playbooks, feishu, tmp_path):
    marker = tmp_path / ("pwned-%s" % uuid.uuid4().hex)
    record = trusted_record(feishu, device_name=template_name(marker))
    run = playbooks.run("keep_quarantined", feishu_event(record), keep_quarantined_feishu_records="injected!")
    assert run.returncode == 0, run.stdout
    assert not marker.exists()
    assert feishu.records[record["device_record_id"]]["device_status"] == 1  # "injected!" names no record
    assert playbooks.feishu_writes() == []


def test_quarantine_tag_holding_a_template_is_never_rendered(playbooks, graph, tmp_path):
    marker = tmp_path / ("pwned-%s" % uuid.uuid4().hex)
    device = re_enabled_quarantined_device(graph, tag="quarantine:" + template_name(marker))
    run = playbooks.run("keep_quarantined", graph_event(device))
    assert run.returncode == 0, run.stdout
    assert not marker.exists()
    assert graph.devices[device["id"]]["accountEnabled"] is False
    assert graph.devices[device["id"]]["extensionAttributes"]["extensionAttribute15"] == "quarantine:" + template_name(marker)


def test_noncompliant_device_with_a_template_name_is_quarantined_without_rendering_it(playbooks, graph, tmp_path):
    marker = tmp_path / ("pwned-%s" % uuid.uuid4().hex)
    device = windows_device(graph, isCompliant=False, accountEnabled=True, displayName=template_name(marker))
    event = graph_event(device, changed=("isCompliant",), previous={"isCompliant": True},
                        observed_at="2026-03-04T05:06:07Z")
    since = last_seq(graph)
    run = playbooks.run("quarantine_noncompliant", event)
    assert run.returncode == 0, run.stdout
    assert not marker.exists()
    assert "injected!" not in run.stdout
    assert graph.devices[device["id"]]["accountEnabled"] is False
    assert graph.devices[device["id"]]["extensionAttributes"]["extensionAttribute15"] == "quarantine:noncompliant:2026-03-04"
    assert len(playbooks.graph_writes(since)) == 1


# --- Events of the wrong shape: refused before any call, naming what is wrong --------------------------------------


def refused_before_any_call(playbooks, run, *named):
    assert run.returncode != 0, run.stdout
    assert playbooks.graph_calls() == [] and playbooks.feishu_calls() == []
    for text in named:
        assert text in run.stdout, "%r not named in:\n%s" % (text, run.stdout[-3000:])


@pytest.mark.parametrize("book", ["keep_quarantined", "quarantine_noncompliant"])
def test_run_by_hand_without_an_event_says_so(playbooks, book):
    run = playbooks.run(book, eda=False)
    refused_before_any_call(playbooks, run, "this run has no ansible_eda.event.fleetguard", "nothing was read or written")


def test_feishu_event_sent_to_quarantine_noncompliant_is_refused(playbooks, feishu):
    record = trusted_record(feishu)
    run = playbooks.run("quarantine_noncompliant", feishu_event(record))
    refused_before_any_call(playbooks, run, '"feishu"')


@pytest.mark.parametrize("book, bad_id", [
    ("keep_quarantined", "../../users/" + GUID), ("quarantine_noncompliant", 42), ("keep_quarantined", GUID + "\n"),
])
def test_an_id_that_is_not_the_directorys_id_is_refused_before_any_call(playbooks, graph, book, bad_id):
    device = re_enabled_quarantined_device(graph, isCompliant=False)
    event = graph_event(device, changed=("accountEnabled", "isCompliant"),
                        previous={"accountEnabled": False, "isCompliant": True})
    event["fleetguard"]["id"] = bad_id
    run = playbooks.run(book, event)
    refused_before_any_call(playbooks, run, "id")
    assert str(bad_id).strip() in run.stdout


def test_feishu_id_that_is_not_digits_is_refused_before_any_call(playbooks, feishu):
    record = trusted_record(feishu)
    event = feishu_event(record)
    event["fleetguard"]["id"] = "7400000000000000001/../../7400000000000000002"
    run = playbooks.run("keep_quarantined", event, keep_quarantined_feishu_records=[record["device_record_id"]])
    refused_before_any_call(playbooks, run, "7400000000000000001/../../7400000000000000002")


@pytest.mark.parametrize("book, damage, named", [
    ("keep_quarantined", lambda change: change.pop("device"), "device"),
    ("keep_quarantined", lambda change: change.update(changed="accountEnabled"), "changed"),
    ("quarantine_noncompliant", lambda change: change.update(previous=["accountEnabled"]), "previous"),
    ("keep_quarantined", lambda change: change.update(directory="okta"), '"okta"'),
    ("quarantine_noncompliant", lambda change: change.update(change="resync", id=None), '"resync"'),
    ("keep_quarantined", lambda change: change.pop("observed_at"), "observed_at"),
    ("keep_quarantined", lambda change: change.update(observed_at="2026-13-45T99:00:00Z"), '"2026-13-45T99:00:00Z"'),
], ids=["no-device", "changed-string", "previous-list", "other-directory", "resync", "no-observed_at",
        "observed_at-out-of-range"])
def test_an_event_of_the_wrong_shape_is_refused_before_any_call(playbooks, graph, book, damage, named):
    device = re_enabled_quarantined_device(graph, isCompliant=False)
    event = graph_event(device, changed=("accountEnabled", "isCompliant"),
                        previous={"accountEnabled": False, "isCompliant": True})
    damage(event["fleetguard"])
    run = playbooks.run(book, event)
    refused_before_any_call(playbooks, run, named)
    assert graph.devices[device["id"]]["accountEnabled"] is True


def test_an_event_of_another_source_is_refused(playbooks):
    run = playbooks.run("keep_quarantined", {"payload": {"device": "x"}, "meta": {"source": {"name": "webhook"}}})
    refused_before_any_call(playbooks, run, "fleetguard")


# --- Events the playbooks must leave alone (no write) or handle once --------------------------------------------------


def test_removed_device_is_reported_and_left_alone(playbooks, graph):
    device = re_enabled_quarantined_device(graph)
    event = graph_event(device, change="removed", changed=(), previous={})
    with graph.lock:
        del graph.devices[device["id"]]
    run = playbooks.run("keep_quarantined", event)
    assert run.returncode == 0, run.stdout
    assert playbooks.graph_writes() == []
    assert "removed" in run.stdout


@pytest.mark.parametrize("tag", ["Quarantine:INC-7"])
def test_enabled_device_without_the_exact_quarantine_tag_is_left_alone(playbooks, graph, tag):
    # The quarantine role writes "quarantine:<reason>" and the release role recognises exactly that prefix: a tag in
    # another case is not a quarantine for either, so keep_quarantined does not disable the device.
    device = re_enabled_quarantined_device(graph, tag=tag)
    run = playbooks.run("keep_quarantined", graph_event(device))
    assert run.returncode == 0, run.stdout
    assert playbooks.graph_writes() == []
    assert graph.devices[device["id"]]["accountEnabled"] is True
    assert "left alone" in run.stdout


def test_extension_attributes_null_is_left_alone(playbooks, graph):
    device = re_enabled_quarantined_device(graph)
    with graph.lock:
        graph.devices[device["id"]]["extensionAttributes"] = None
    event = graph_event(device)
    event["fleetguard"]["device"]["extensionAttributes"] = None
    run = playbooks.run("keep_quarantined", event)
    assert run.returncode == 0, run.stdout
    assert playbooks.graph_writes() == []


def test_device_released_before_the_playbook_ran_is_not_disabled_again(playbooks, graph):
    # The event says "tagged and enabled", but the release role cleared the tag (and enabled it) since: the event is
    # old news; the device as Graph has it now decides.
    device = re_enabled_quarantined_device(graph)
    event = graph_event(device)
    with graph.lock:
        graph.devices[device["id"]]["extensionAttributes"]["extensionAttribute15"] = None
    run = playbooks.run("keep_quarantined", event)
    assert run.returncode == 0, run.stdout
    assert playbooks.graph_writes() == []
    assert graph.devices[device["id"]]["accountEnabled"] is True


@pytest.mark.parametrize("records, named", [
    (lambda record: " %s , other" % record["serial_number"], True),
    (lambda record: None, False),
], ids=["comma-string", "none"])
def test_feishu_records_list_in_every_form(playbooks, feishu, records, named):
    record = trusted_record(feishu)
    run = playbooks.run("keep_quarantined", feishu_event(record), keep_quarantined_feishu_records=records(record))
    assert run.returncode == 0, run.stdout
    assert len(playbooks.feishu_writes()) == (1 if named else 0)
    assert feishu.records[record["device_record_id"]]["device_status"] == (2 if named else 1)


def test_feishu_records_list_of_another_type_is_refused_before_any_call(playbooks, feishu):
    record = trusted_record(feishu)
    run = playbooks.run("keep_quarantined", feishu_event(record), keep_quarantined_feishu_records={"a": 1})
    refused_before_any_call(playbooks, run, "keep_quarantined_feishu_records")


def test_event_seen_in_the_future_puts_back_once_and_a_second_run_writes_nothing(playbooks, graph):
    # A controller whose clock runs behind the source's (run_job_template runs elsewhere) sees a time in the future:
    # the report said "-3155 s after the change was seen"; the age is never below 0.
    device = re_enabled_quarantined_device(graph)
    event = graph_event(device, observed_at="2099-01-01T00:00:00Z")
    first = playbooks.run("keep_quarantined", event)
    assert first.returncode == 0, first.stdout
    assert graph.devices[device["id"]]["accountEnabled"] is False and len(playbooks.graph_writes()) == 1
    assert "put back 0 s after the change was seen" in first.stdout
    since = last_seq(graph)
    second = playbooks.run("keep_quarantined", event)
    assert second.returncode == 0, second.stdout
    assert playbooks.graph_writes(since) == []
    assert "left alone" in second.stdout


# --- The real rulebook ------------------------------------------------------------------------------------------------


def test_rulebook_puts_back_a_device_named_by_a_template_without_rendering_it(rulebook, graph, tmp_path):
    marker = tmp_path / ("pwned-%s" % uuid.uuid4().hex)
    device = windows_device(graph, accountEnabled=False, displayName=template_name(marker),
                            extensionAttributes={"extensionAttribute15": "quarantine:INC-7"})
    rulebook.start("fleetguard.devices.keep_quarantined", dict(
        keep_quarantined_msgraph_interval=5, keep_quarantined_feishu_interval=30,
        keep_quarantined_state_dir=str(tmp_path), keep_quarantined_feishu_records=[]))
    rulebook.wait_for(lambda: len(rulebook.rounds()) >= 1, 90, "the Graph source's first round")
    since = last_seq(graph)
    with graph.lock:
        graph.devices[device["id"]]["accountEnabled"] = True
    rulebook.wait_for(lambda: "put back" in rulebook.output(), 60, "the put-back's report")
    assert graph.devices[device["id"]]["accountEnabled"] is False
    assert not marker.exists(), "the device name ran on the controller"
    assert "injected!" not in rulebook.output()
    patches = [entry for entry in graph.wire.entries(since=since) if entry["method"] == "PATCH"]
    assert len(patches) == 1


def test_rulebook_intervals_default_to_60_s_as_documented(rulebook, graph, tmp_path):
    rulebook.start("fleetguard.devices.quarantine_noncompliant", dict(quarantine_noncompliant_state_dir=str(tmp_path)))
    rulebook.wait_for(lambda: len(rulebook.rounds()) >= 1, 90, "the Graph source's first round")
    assert rulebook.proc.poll() is None


# --- Through the filter change_event: nothing of the event is rendered, read or not -----------------------------------
# A template that renders to a value of the right form (a GUID, `updated`) would pass a check made after rendering,
# its lookup having run: each is refused before any call, unrendered.


def rendering_to(marker, value):
    """A template that creates `marker` when rendered, then renders to `value`."""
    return "{{ lookup('pipe', 'touch %s') }}{{ %r }}" % (marker, value)


def test_strings_the_filter_never_reads_are_never_rendered(playbooks, graph, tmp_path):
    marker = tmp_path / ("pwned-%s" % uuid.uuid4().hex)
    device = re_enabled_quarantined_device(graph)
    event = graph_event(device, changed=("accountEnabled", "displayName"),
                        previous={"accountEnabled": False, "displayName": rendering_to(marker, "old")})
    change = event["fleetguard"]
    change["device"]["displayName"] = rendering_to(marker, "PC")
    for part in (change["device"], change["previous"], change, event):
        part[rendering_to(marker, "key")] = rendering_to(marker, "value")
    event["meta"] = {"source": {"name": rendering_to(marker, "source")}, "uuid": rendering_to(marker, "uuid")}
    since = last_seq(graph)
    run = playbooks.run("keep_quarantined", event, **{"unrelated": rendering_to(marker, "extra var")})
    assert run.returncode == 0, run.stdout
    assert not marker.exists(), "an unread string of the event was rendered"
    assert "put back" in run.stdout and len(playbooks.graph_writes(since)) == 1


@pytest.mark.parametrize("book, key, valid", [
    ("keep_quarantined", "id", GUID),
    ("keep_quarantined", "change", "updated"),
    ("keep_quarantined", "directory", "msgraph"),
    ("keep_quarantined", "observed_at", "2026-03-04T05:06:07Z"),
    ("keep_quarantined", "changed", "accountEnabled"),
    ("keep_quarantined", "device.accountEnabled", True),
    ("quarantine_noncompliant", "previous.isCompliant", True),
])
def test_a_template_rendering_to_a_valid_value_is_refused_unrendered_before_any_call(playbooks, graph, tmp_path,
                                                                                     book, key, valid):
    marker = tmp_path / ("pwned-%s" % uuid.uuid4().hex)
    if book == "keep_quarantined":
        device = re_enabled_quarantined_device(graph, isCompliant=False)
    else:
        device = windows_device(graph, isCompliant=False, accountEnabled=True)
    event = graph_event(device, changed=("accountEnabled", "isCompliant"),
                        previous={"accountEnabled": False, "isCompliant": True})
    if key == "id":
        valid = device["id"]
    change = event["fleetguard"]
    if "." in key:
        part, field = key.split(".")
        change[part][field] = rendering_to(marker, valid)
    else:
        change[key] = [rendering_to(marker, valid)] if key == "changed" else rendering_to(marker, valid)
    run = playbooks.run(book, event)
    assert run.returncode != 0, run.stdout
    assert not marker.exists(), "%s was rendered before the filter could refuse it" % key
    assert playbooks.graph_calls() == [] and playbooks.graph_writes() == []
    assert "nothing was read or written" in run.stdout and key.split(".")[-1] in run.stdout
    assert "lookup(" not in run.stdout
    assert graph.devices[device["id"]]["accountEnabled"] is True
