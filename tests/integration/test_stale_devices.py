"""The stale-device lifecycle (role fleetguard.devices.stale_devices through playbooks/stale_devices.yml): real
ansible-playbook against the Graph sandbox, whose generated fleet has sign-in ages spread over 400 days, some null,
all three trust types and five operating systems, and whose clock can be moved so that the grace period passes.

The expected devices are computed here from the sandbox's own state, independently of the role's filters.
"""

import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

import pytest
import requests

from ansible_collections.fleetguard.devices.plugins.plugin_utils.device_inventory import safe_host_name
from sandbox.feishu import FeishuSandbox
from sandbox.msgraph import GraphSandbox

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UTC = datetime.timezone.utc
TAG = "extensionAttribute14"
CHROMIUM = "/usr/bin/chromium"

GRAPH_SOURCE = """
plugin: fleetguard.devices.msgraph_devices
compose:
  ansible_connection: "'local'"
"""


@pytest.fixture
def feishu():
    """Overrides conftest's: the role never talks to Feishu; a small one for the shared environment."""
    sandbox = FeishuSandbox(records=4, seed=7, rate_limits=False).start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def graph():
    """Overrides conftest's: 120 devices (a dozen stale Windows devices an app may disable), no throttling."""
    sandbox = GraphSandbox(devices=120, seed=11, throttling=False).start()
    yield sandbox
    sandbox.stop()


class Run:
    def __init__(self, returncode, stdout, results, report):
        self.returncode = returncode
        self.stdout = stdout
        self.results = results
        self.report = report

    def task(self, suffix):
        found = [entry for entry in self.results if entry["task"].endswith(suffix)]
        assert len(found) == 1, "task %r ran %d times; output:\n%s" % (suffix, len(found), self.stdout[-3000:])
        return found[0]

    def rows(self, **wanted):
        return [row for row in self.report["devices"] if all(row[key] == value for key, value in wanted.items())]

    def ids(self, **wanted):
        return sorted(row["id"] for row in self.rows(**wanted))

    @property
    def changed(self):
        return sum(1 for entry in self.results if entry["status"] == "changed")


class StaleDevices:
    """Runs playbooks/stale_devices.yml (localhost form unless an inventory is given), one report folder per run."""

    def __init__(self, env, tmp_path):
        self.env = env
        self.tmp_path = tmp_path
        self.count = 0

    def run(self, extra_vars=None, check=False, inventory=None, limit=None):
        self.count += 1
        report_dir = self.tmp_path / ("report-%d" % self.count)
        results_file = self.tmp_path / ("results-%d.jsonl" % self.count)
        variables = dict({"stale_devices_report_dir": str(report_dir)}, **(extra_vars or {}))
        command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook")]
        command += inventory or ["-i", "localhost,"]
        command += [os.path.join(REPO, "playbooks", "stale_devices.yml"), "-e", json.dumps(variables)]
        if check:
            command.append("--check")
        if limit:
            command += ["--limit", ",".join(limit)]
        proc = subprocess.run(command, env=dict(self.env, RECORD_RESULTS_FILE=str(results_file)), cwd=str(self.tmp_path),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=600,
                              check=False)
        results = []
        if results_file.exists():
            results = [json.loads(line) for line in results_file.read_text().splitlines() if line.strip()]
        report = None
        if (report_dir / "stale-devices.json").exists():
            report = json.loads((report_dir / "stale-devices.json").read_text())
        return Run(proc.returncode, proc.stdout, results, report)


@pytest.fixture
def stale(playbook, tmp_path):
    env = dict(playbook.env, ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    return StaleDevices(env, tmp_path)


def today():
    return datetime.datetime.now(UTC).date()


def signed_in(device):
    text = device["approximateLastSignInDateTime"]
    return None if text is None else datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def cutoff(day, inactive_days=90):
    return datetime.datetime(day.year, day.month, day.day, tzinfo=UTC) - datetime.timedelta(days=inactive_days)


def autopilot(device):
    return any(str(item).startswith("[ZTDID]") for item in device.get("physicalIds") or [])


def expected_disable(graph, day=None, include_null=False, exclude=()):
    """What phase 1 must disable, from the sandbox's state: enabled, stale (or null when asked), in the default scope
    (AzureAd, Workplace), Windows (an app-only caller may not disable others), untagged, not Autopilot, not excluded."""
    limit = cutoff(day or today())
    with graph.lock:
        return sorted(oid for oid, d in graph.devices.items()
                      if d["accountEnabled"] and d["operatingSystem"] == "Windows"
                      and d["trustType"] in ("AzureAd", "Workplace") and not d["extensionAttributes"][TAG]
                      and not autopilot(d) and oid not in exclude
                      and ((signed_in(d) is None and include_null) or (signed_in(d) is not None and signed_in(d) <= limit)))


def patched(graph):
    """Object ids of the PATCHes the sandbox applied (alone or in $batch)."""
    return sorted(e["path"].rsplit("/", 1)[-1] for e in graph.wire.entries(method="PATCH") if e["status"] == 204)


def deleted(graph):
    return sorted(e["path"].rsplit("/", 1)[-1] for e in graph.wire.entries(method="DELETE") if e["status"] == 204)


def writes(graph):
    """Every write request the sandbox received, answered or not ($batch parts are logged one by one; a $batch of
    GETs, which check mode sends to read devices by id, is not a write)."""
    return [e for e in graph.wire.entries() if e["method"] in ("PATCH", "DELETE", "PUT")]


def move_clock(graph, days, signed_in_ids=()):
    answer = requests.post(graph.url + "/_sandbox/clock", json={"days": days, "signed_in": list(signed_in_ids)},
                           timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["today"]


# report


def test_report_mode_writes_nothing_and_finds_the_stale_devices_with_an_unquoted_le_filter(stale, graph):
    run = stale.run()

    assert run.returncode == 0, run.stdout[-3000:]
    assert writes(graph) == []
    assert run.changed == 0
    assert run.report["mode"] == "report" and run.report["as_of"] == today().isoformat()
    assert run.ids(action="disable") == expected_disable(graph) and len(expected_disable(graph)) >= 5
    assert all(row["status"] == "planned" for row in run.rows(action="disable"))
    filters = [e["query"].get("$filter") for e in graph.wire.entries(method="GET") if e["path"].endswith("/devices")]
    assert "(trustType in ('AzureAd','Workplace')) and approximateLastSignInDateTime le %sT00:00:00Z" % (
        cutoff(today()).date().isoformat()) in filters
    # Every row carries its ids, the action and the reason; the summary adds up.
    assert all(row["id"] and row["deviceId"] and row["action"] and row["reason"] for row in run.report["devices"])
    actions = ("delete", "disable", "reenable", "came_back", "grace", "keep", "blocked", "already_disabled",
               "never_signed_in", "excluded")
    assert sum(run.report["summary"][action] for action in actions) == run.report["summary"]["devices"]
    stats = run.task("Publish the summary for AWX workflows (set_stats stale_devices_summary)")
    assert stats["result"]["ansible_stats"]["data"]["stale_devices_summary"]["disable"] == len(expected_disable(graph))
    # Non-Windows stale devices: this app-only caller may not disable them; reported as blocked, never written.
    with graph.lock:
        blocked = sorted(oid for oid, d in graph.devices.items() if d["operatingSystem"] != "Windows"
                         and d["accountEnabled"] and signed_in(d) and signed_in(d) <= cutoff(today())
                         and d["trustType"] in ("AzureAd", "Workplace"))
    assert blocked and set(blocked) <= set(run.ids(action="blocked"))


# the lifecycle


@pytest.mark.once
def test_disable_rerun_time_passes_delete_with_check_mode_predicting_each_real_run(stale, graph):
    stale_ids = expected_disable(graph)
    with graph.lock:
        before = dict((oid, json.loads(json.dumps(d))) for oid, d in graph.devices.items())

    # Phase 1 in check mode: zero writes, and the prediction is...
    check = stale.run({"stale_devices_mode": "disable"}, check=True)
    assert check.returncode == 0, check.stdout[-3000:]
    assert writes(graph) == []
    assert check.ids(status="would") == check.ids(action="disable") == stale_ids
    graph.wire.clear()

    # ...exactly what the real run writes: disabled and tagged with today's UTC date, nothing else changed.
    real = stale.run({"stale_devices_mode": "disable"})
    assert real.returncode == 0, real.stdout[-3000:]
    assert patched(graph) == stale_ids and deleted(graph) == []
    assert real.ids(status="done") == stale_ids
    tag = "stale-disabled:%s" % today().isoformat()
    with graph.lock:
        for oid, device in graph.devices.items():
            if oid in stale_ids:
                assert device["accountEnabled"] is False and device["extensionAttributes"][TAG] == tag
                device = dict(device, accountEnabled=True, extensionAttributes=dict(device["extensionAttributes"], **{TAG: None}))
            assert device == before[oid], oid
    graph.wire.clear()

    # A re-run changes nothing: the tagged devices are in their grace period.
    rerun = stale.run({"stale_devices_mode": "disable"})
    assert rerun.returncode == 0, rerun.stdout[-3000:]
    assert writes(graph) == [] and rerun.changed == 0
    assert rerun.ids(action="grace") == stale_ids

    # 31 days pass in the sandbox; one disabled device signs in again meanwhile.
    returned = stale_ids[0]
    day = move_clock(graph, 31, [returned])
    later = {"stale_devices_mode": "delete", "stale_devices_as_of": day, "stale_devices_as_of_writes": True}
    graph.wire.clear()

    check = stale.run(later, check=True)
    assert check.returncode == 0, check.stdout[-3000:]
    assert writes(graph) == []
    assert check.ids(status="would") == check.ids(action="delete") == stale_ids[1:]
    graph.wire.clear()

    real = stale.run(later)
    assert real.returncode == 0, real.stdout[-3000:]
    assert deleted(graph) == stale_ids[1:] and patched(graph) == []
    assert real.ids(status="done") == stale_ids[1:]
    (came_back,) = real.rows(action="came_back")
    assert came_back["id"] == returned and came_back["status"] == "none" and "signed in on" in came_back["reason"]
    with graph.lock:
        assert not set(stale_ids[1:]) & set(graph.devices)
        assert graph.devices[returned]["accountEnabled"] is False and graph.devices[returned]["extensionAttributes"][TAG] == tag
        assert set(graph.devices) == set(before) - set(stale_ids[1:])
    graph.wire.clear()

    # With stale_devices_reenable_returned the device that came back is enabled again and its tag cleared.
    back = stale.run(dict(later, stale_devices_reenable_returned=True))
    assert back.returncode == 0, back.stdout[-3000:]
    assert patched(graph) == [returned] and deleted(graph) == []
    with graph.lock:
        assert graph.devices[returned]["accountEnabled"] is True and graph.devices[returned]["extensionAttributes"][TAG] is None


def test_the_max_changes_guard_writes_nothing_and_fails_naming_the_count(stale, graph):
    count = len(expected_disable(graph))

    run = stale.run({"stale_devices_mode": "disable", "stale_devices_max_changes": count - 1})

    assert run.returncode != 0
    assert writes(graph) == []
    message = run.task("Fail if the max-changes guard stopped the run")["result"]["msg"]
    assert "Nothing was written: this disable run would change %d devices, more than stale_devices_max_changes=%d" % (
        count, count - 1) in message
    assert run.report["guard"] == {"max_changes": count - 1, "changes": count, "tripped": True,
                                   "would_change": {"disable": count, "delete": 0}}
    assert run.ids(status="stopped") == expected_disable(graph)


def test_devices_without_a_sign_in_time_are_never_touched_by_default(stale, graph):
    # A Windows device registered without a sign-in time, enabled: phase 1 could disable it, but must not.
    graph.add_device(displayName="FG-WS-NEW", operatingSystem="Windows", trustType="AzureAd", accountEnabled=True,
                     approximateLastSignInDateTime=None)
    with graph.lock:
        never = sorted(oid for oid, d in graph.devices.items() if d["approximateLastSignInDateTime"] is None
                       and d["trustType"] in ("AzureAd", "Workplace"))
    assert never

    run = stale.run({"stale_devices_mode": "disable"})

    assert run.returncode == 0, run.stdout[-3000:]
    assert run.ids(action="never_signed_in") == never
    assert not set(patched(graph)) & set(never)
    graph.wire.clear()

    # Asked to, they count as stale at once (check mode: nothing written, the prediction names them).
    check = stale.run({"stale_devices_mode": "disable", "stale_devices_include_never_signed_in": True}, check=True)
    assert check.returncode == 0, check.stdout[-3000:]
    assert writes(graph) == []
    assert check.ids(status="would") == expected_disable(graph, include_null=True)
    new_device = [oid for oid in never if graph.devices[oid]["displayName"] == "FG-WS-NEW"]
    assert new_device and set(new_device) <= set(check.ids(action="disable"))
    assert check.ids(action="never_signed_in") == []


def test_exclusions_hold_by_name_device_id_object_id_and_extension_attribute(stale, graph):
    targets = expected_disable(graph)[:4]
    with graph.lock:
        devices = [graph.devices[oid] for oid in targets]
        devices[3]["extensionAttributes"]["extensionAttribute13"] = "Keep"
    exclude = [devices[0]["displayName"].lower(), devices[1]["deviceId"].upper(), devices[2]["id"]]

    expected = expected_disable(graph, exclude=targets)
    assert expected == sorted(set(expected_disable(graph)) - set(targets)) and expected

    run = stale.run({"stale_devices_mode": "disable", "stale_devices_exclude": ", ".join(exclude),
                     "stale_devices_exclude_extension_attributes": {"extensionAttribute13": ["keep", "lab"]}})

    assert run.returncode == 0, run.stdout[-3000:]
    assert patched(graph) == expected
    assert set(targets) <= set(run.ids(action="excluded"))
    reasons = dict((row["id"], row["reason"]) for row in run.rows(action="excluded"))
    assert "(its display name)" in reasons[targets[0]] and "(its deviceId)" in reasons[targets[1]]
    assert "(its object id)" in reasons[targets[2]] and "extensionAttribute13 is 'Keep'" in reasons[targets[3]]


def test_scope_only_the_given_operating_systems_and_trust_types(stale, graph):
    run = stale.run({"stale_devices_trust_types": ["ServerAd"], "stale_devices_operating_systems": "Windows"})

    assert run.returncode == 0, run.stdout[-3000:]
    assert {row["trustType"] for row in run.report["devices"]} == {"ServerAd"}
    assert {row["operatingSystem"] for row in run.report["devices"]} == {"Windows"}
    filters = [e["query"].get("$filter") for e in graph.wire.entries(method="GET") if e["path"].endswith("/devices")]
    assert all("(operatingSystem eq 'Windows') and trustType in ('ServerAd')" in text for text in filters)


def test_bad_variables_fail_before_any_request(stale, graph):
    run = stale.run({"stale_devices_mode": "disable", "stale_devices_inactive_days": 7, "stale_devices_grace_days": 0,
                     "stale_devices_as_of": "2030-01-01"})

    assert run.returncode != 0
    message = run.task("Refuse bad variables (nothing has been read yet)")["result"]["msg"]
    assert message.startswith("Nothing was read or written.")
    assert "stale_devices_inactive_days is 7" in message and "stale_devices_grace_days is 0" in message
    assert "stale_devices_as_of is 2030-01-01 but today is" in message
    # The role's argument spec refuses an unknown mode before its first task.
    refused = stale.run({"stale_devices_mode": "purge"})
    assert refused.returncode != 0 and "stale_devices_mode must be one of: report, disable, delete" in refused.stdout
    assert graph.wire.entries() == []


def test_a_huge_day_count_is_refused_naming_it_before_any_request(stale, graph):
    run = stale.run({"stale_devices_mode": "delete", "stale_devices_inactive_days": 10 ** 9})

    assert run.returncode != 0
    message = run.task("Refuse bad variables (nothing has been read yet)")["result"]["msg"]
    assert "stale_devices_inactive_days is 1000000000; it must be at most 3650" in message
    assert "date value out of range" not in run.stdout
    assert graph.wire.entries() == []


# the record of a run: the reports and set_stats


def due_for_deletion(graph, count=3):
    """Disable and tag `count` stale Windows devices 40 days ago, as phase 1 would have: a delete run deletes them."""
    chosen = expected_disable(graph)[:count]
    tag = "stale-disabled:%s" % (today() - datetime.timedelta(days=40)).isoformat()
    with graph.lock:
        for oid in chosen:
            graph.devices[oid]["accountEnabled"] = False
            graph.devices[oid]["extensionAttributes"][TAG] = tag
    return chosen


def unusable_report_paths(tmp_path):
    """Report settings no run can write: a folder under a regular file, a regular file where the folder should be,
    a JSON report path that is a folder."""
    plain = tmp_path / "plain-file"
    plain.write_text("not a folder\n")
    (tmp_path / "json-is-a-folder" / "stale-devices.json").mkdir(parents=True)
    return {
        "under-a-file": {"stale_devices_report_dir": str(plain / "reports")},
        "a-file": {"stale_devices_report_dir": str(plain)},
        "json-is-a-folder": {"stale_devices_report_dir": str(tmp_path / "json-is-a-folder")},
        # One file under two spellings: the HTML report would overwrite the JSON record of what was deleted.
        "one-file-two-spellings": {"stale_devices_report_dir": str(tmp_path / "reports"),
                                   "stale_devices_report_json": str(tmp_path / "reports" / "a.json"),
                                   "stale_devices_report_html": str(tmp_path / "reports" / "." / "a.json")},
    }


@pytest.mark.parametrize("case", ["under-a-file", "a-file", "json-is-a-folder", "one-file-two-spellings"])
def test_a_delete_run_whose_reports_cannot_be_written_fails_before_any_request(stale, graph, tmp_path, case):
    due = due_for_deletion(graph)
    report_vars = unusable_report_paths(tmp_path)[case]

    run = stale.run(dict(report_vars, stale_devices_mode="delete"))

    assert run.returncode != 0
    message = run.task("Stop before any request, naming the report path that cannot be written")["result"]["msg"]
    assert message.startswith("Nothing was read or written. The reports cannot be written")
    assert report_vars["stale_devices_report_dir"] in message
    assert graph.wire.entries() == [] and deleted(graph) == []
    with graph.lock:
        assert set(due) <= set(graph.devices)


def test_a_delete_that_fails_for_one_device_leaves_the_report_and_set_stats_naming_each_device(stale, graph):
    due = due_for_deletion(graph)
    refused = due[1]
    graph.faults.add(action="status", status=403, match={"method": "DELETE", "path_regex": refused + "$"}, times=5)

    run = stale.run({"stale_devices_mode": "delete"})

    assert run.returncode != 0
    assert deleted(graph) == sorted(set(due) - {refused})
    assert run.ids(status="done") == sorted(set(due) - {refused}) and run.ids(status="failed") == [refused]
    summary = run.task("Publish the summary for AWX workflows (set_stats stale_devices_summary)")["result"][
        "ansible_stats"]["data"]["stale_devices_summary"]
    assert sorted(row["id"] for row in summary["written"]) == sorted(set(due) - {refused})
    assert [row["id"] for row in summary["failed_writes"]] == [refused]
    assert "could not be written" in run.task("Fail if a write failed")["result"]["msg"]


def test_a_report_folder_lost_while_deleting_still_leaves_set_stats_naming_the_deleted_devices(stale, graph, tmp_path):
    due = due_for_deletion(graph)
    report_dir = tmp_path / "taken-away"
    handle = graph.handle

    def take_the_folder_away_on_the_first_delete(request):
        # Synchronous, inside the emulator: the folder is a file before the first DELETE is answered.
        if request.method == "DELETE" and report_dir.is_dir():
            shutil.rmtree(str(report_dir))
            report_dir.write_text("a file now\n")
        return handle(request)

    graph.handle = take_the_folder_away_on_the_first_delete

    run = stale.run({"stale_devices_mode": "delete", "stale_devices_report_dir": str(report_dir)})

    assert run.returncode != 0
    assert deleted(graph) == due
    summary = run.task("Publish the summary for AWX workflows (set_stats stale_devices_summary)")["result"][
        "ansible_stats"]["data"]["stale_devices_summary"]
    assert sorted(row["id"] for row in summary["written"]) == due and summary["delete"] == len(due)
    again = run.task("Publish the summary again, saying the report could not be written")["result"][
        "ansible_stats"]["data"]["stale_devices_summary"]
    assert again["written"] == summary["written"] and again["report_error"]
    message = run.task("Fail, naming what was written (the report could not be)")["result"]["msg"]
    assert all(oid in message for oid in due)


# exclusions given as survey text


def test_multi_line_survey_exclusions_keep_a_comma_in_a_name_and_unmatched_ones_are_warned_and_reported(
        stale, graph, tmp_path):
    long_ago = (today() - datetime.timedelta(days=200)).isoformat() + "T08:00:00Z"
    graph.add_device(displayName="Smith, John's iPad", operatingSystem="Windows", trustType="AzureAd",
                     accountEnabled=True, approximateLastSignInDateTime=long_ago)
    with graph.lock:
        (smith,) = [oid for oid, d in graph.devices.items() if d["displayName"] == "Smith, John's iPad"]
    stale_ids = expected_disable(graph)
    assert smith in stale_ids

    run = stale.run({"stale_devices_mode": "disable",
                     "stale_devices_exclude": "Smith, John's iPad\r\nFG-NO-SUCH-DEVICE\n"})

    assert run.returncode == 0, run.stdout[-3000:]
    assert patched(graph) == sorted(set(stale_ids) - {smith})
    (row,) = run.rows(id=smith)
    assert row["action"] == "excluded" and "(its display name)" in row["reason"]
    assert run.report["settings"]["exclude"] == ["Smith, John's iPad", "FG-NO-SUCH-DEVICE"]
    assert run.report["unmatched_exclusions"] == ["FG-NO-SUCH-DEVICE"]
    assert "[WARNING]: stale_devices_exclude: 1 entry matched none of the" in " ".join(run.stdout.split())
    html = (tmp_path / "report-1" / "stale-devices.html").read_text()
    assert 'id="unmatched-exclusions"' in html and "FG-NO-SUCH-DEVICE" in html
    summary = run.task("Publish the summary for AWX workflows (set_stats stale_devices_summary)")["result"][
        "ansible_stats"]["data"]["stale_devices_summary"]
    assert summary["unmatched_exclusions"] == ["FG-NO-SUCH-DEVICE"]


# the playbook's host form


def test_host_form_decides_and_writes_only_the_limited_hosts_and_the_localhost_form_refuses_device_hosts(
        stale, graph, tmp_path):
    (tmp_path / "devices.msgraph_devices.yml").write_text(textwrap.dedent(GRAPH_SOURCE))
    inventory = ["-i", str(tmp_path / "devices.msgraph_devices.yml")]
    stale_ids = expected_disable(graph)
    with graph.lock:
        hosts = dict((oid, safe_host_name(graph.devices[oid]["displayName"])) for oid in stale_ids)
    chosen = stale_ids[:2]

    run = stale.run({"stale_devices_mode": "disable", "stale_devices_targets": "msgraph_devices"}, inventory=inventory,
                    limit=[hosts[oid] for oid in chosen])

    assert run.returncode == 0, run.stdout[-3000:]
    assert patched(graph) == chosen
    assert run.ids() == chosen and run.report["inventory_hosts"] == 2
    graph.wire.clear()

    refused = stale.run({"stale_devices_mode": "disable"}, inventory=inventory)
    assert refused.returncode != 0
    assert "stale_devices_targets=PATTERN" in refused.task(
        "Refuse the localhost form on an inventory of device hosts (before any request)")["result"]["msg"]
    assert writes(graph) == []


# msgraph_device_info on its own


def test_msgraph_device_info_last_sign_in_before_relative_days(playbook, graph):
    run = playbook("""
        - name: Devices idle for 90 days
          fleetguard.devices.msgraph_device_info:
            last_sign_in_before: 90d
            last_sign_in_after: "2020-01-01"
            select: [id, approximateLastSignInDateTime]
          register: found
    """)
    result = run.task("Devices idle for 90 days")["result"]
    assert run.returncode == 0, run.stdout[-3000:]
    (listing,) = [e for e in graph.wire.entries(method="GET") if e["path"].endswith("/devices")]
    operator_clauses = listing["query"]["$filter"].split(" and ")
    assert operator_clauses[0] == "approximateLastSignInDateTime ge 2020-01-01T00:00:00Z"
    sent = datetime.datetime.fromisoformat(operator_clauses[1].split(" le ")[1].replace("Z", "+00:00"))
    assert abs((datetime.datetime.now(UTC) - datetime.timedelta(days=90) - sent).total_seconds()) < 120
    with graph.lock:
        expected = sorted(oid for oid, d in graph.devices.items() if signed_in(d) and signed_in(d) <= sent)
    assert sorted(device["id"] for device in result["devices"]) == expected


# the HTML report


@pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason="needs Debian's chromium (make chromium)")
def test_the_html_report_renders_in_headless_chromium(stale, graph, tmp_path):
    run = stale.run({"stale_devices_mode": "disable"}, check=True)
    assert run.returncode == 0, run.stdout[-3000:]
    html = tmp_path / "report-1" / "stale-devices.html"
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--user-data-dir=" + profile]
        dom = subprocess.run(common + ["--dump-dom", "file://%s" % html], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, universal_newlines=True, timeout=120, check=True).stdout
        shot = tmp_path / "stale-devices.png"
        subprocess.run(common + ["--hide-scrollbars", "--window-size=1280,1000", "--screenshot=%s" % shot,
                                 "file://%s" % html], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=120, check=True)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert dom.count('data-action="disable" data-status="would"') == len(expected_disable(graph))
    assert 'id="count-disable">%d<' % len(expected_disable(graph)) in dom
    assert "Check mode: nothing was written." in dom
    with open(shot, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 30000  # a blank page compresses to a few kB


def test_an_existing_shared_report_folder_keeps_its_mode(stale, graph, tmp_path):
    # A report folder such as /tmp (mode 1777) made 0755 would lock every other user out of it.
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)

    run = stale.run({"stale_devices_report_dir": str(shared)})

    assert run.returncode == 0, run.stdout[-3000:]
    assert (shared / "stale-devices.json").exists()
    assert oct(shared.stat().st_mode & 0o7777) == oct(0o1777)
