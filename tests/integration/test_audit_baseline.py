"""The audit role's baseline edge cases, through real ansible-playbook against the sandboxes:
one device asked for two states, CSV rows of empty cells and with cells beyond the header, and an audit in which
every entry errored. The audit never writes to either directory, whatever the baseline says.
"""

import json
import shutil

import pytest

from sandbox.feishu import FeishuSandbox
from sandbox.msgraph import GraphSandbox

AUDIT = "- name: Audit\n  ansible.builtin.include_role:\n    name: fleetguard.devices.audit\n"
WRITE_METHODS = ("PUT", "PATCH", "DELETE")
STATUS_NAMES = {0: "unknown", 1: "trusted", 2: "untrusted"}


@pytest.fixture
def feishu():
    """Overrides conftest's: 12 records, no rate limits (the limits are not the point here)."""
    sandbox = FeishuSandbox(records=12, seed=7, rate_limits=False).start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def graph():
    """Overrides conftest's: 12 devices, no throttling."""
    sandbox = GraphSandbox(devices=12, seed=11, throttling=False).start()
    yield sandbox
    sandbox.stop()


class Audit:
    """Runs the audit role in a play against localhost; the report lands in tmp_path/reports."""

    def __init__(self, playbook, feishu, tmp_path):
        self.playbook = playbook
        self.feishu = feishu
        self.tmp_path = tmp_path

    def __call__(self, **role_vars):
        values = dict(audit_report_dir=str(self.tmp_path / "reports"),
                      audit_feishu_connection=dict(base_url=self.feishu.url, app_id=self.feishu.app_id,
                                                   app_secret=self.feishu.app_secret))
        values.update(role_vars)
        return self.playbook(AUDIT, play_vars=values, module_defaults=False)

    def csv(self, name, text):
        path = self.tmp_path / name
        path.write_text(text)
        return str(path)

    @property
    def report(self):
        path = self.tmp_path / "reports" / "drift-report.json"
        return json.loads(path.read_text()) if path.exists() else None

    @property
    def html(self):
        return (self.tmp_path / "reports" / "drift-report.html").read_text()


@pytest.fixture
def audit(playbook, feishu, tmp_path):
    return Audit(playbook, feishu, tmp_path)


def failed_task(run):
    failed = [entry for entry in run.results if entry["status"] == "failed"]
    assert failed, "nothing failed; output:\n%s" % run.stdout[-3000:]
    return failed[-1]["task"].split(" : ")[-1], failed[-1]["result"].get("msg", "")


def writes(*sandboxes):
    return [(e["method"], e["path"]) for sandbox in sandboxes for e in sandbox.wire.entries() if e["method"] in WRITE_METHODS]


def desktop_records(feishu):
    """(record id, serial number, current status name) of the records that have a serial number."""
    with feishu.lock:
        return [(rid, r["serial_number"], STATUS_NAMES[r.get("device_status", 0)])
                for rid, r in sorted(feishu.records.items(), key=lambda item: int(item[0])) if r.get("serial_number")]


def windows_devices(graph):
    """(object id, display name, accountEnabled) of the Windows devices (an app may change any of their properties)."""
    with graph.lock:
        return [(oid, d["displayName"], d["accountEnabled"]) for oid, d in sorted(graph.devices.items())
                if d["operatingSystem"] == "Windows"]


def other_status(name):
    return "untrusted" if name == "trusted" else "trusted"


def by_entry(report):
    return dict((row["entry"], row) for key in ("drifted", "in_sync", "unmatched", "ambiguous", "errors", "conflicts")
                for row in report[key])


def test_one_identifier_asked_for_two_states_is_refused_before_any_request_naming_both_entries(audit, feishu, graph):
    (rid, dummy, status), second = desktop_records(feishu)[:2]
    baseline = [{"name": "first", "device_record_id": rid, "device_status": status},
                {"device_record_id": second[0], "device_status": second[2]},
                {"name": "third", "device_record_id": rid, "device_status": other_status(status)}]

    run = audit(audit_baseline=baseline)

    assert run.returncode != 0
    task, message = failed_task(run)
    assert task == "Refuse a malformed baseline (nothing has been read from the directories yet)"
    assert "entry 1 (first): conflicts with entry 3 (device_status)" in message, message
    assert ('entry 3 (third): device_record_id device_status="%s" conflicts with entry 1, which asks "%s" for the same device'
            % (other_status(status), status)) in message, message
    assert "entry 2" not in message
    assert feishu.wire.entries() == [] and graph.wire.entries() == []
    assert audit.report is None


def test_one_device_found_by_two_identifiers_and_asked_for_two_states_is_reported_as_a_conflict(audit, feishu, graph):
    (rid, serial, status), (rid2, serial2, status2), (rid3, dummy, status3) = desktop_records(feishu)[:3]
    (oid, name, enabled), (oid2, name2, enabled2) = windows_devices(graph)[:2]
    baseline = [
        # 1 and 2: one record, by id and by serial number, asked for two states: a conflict.
        {"device_record_id": rid, "device_status": status},
        {"name": "by serial", "serial_number": serial, "device_status": other_status(status)},
        # 3 and 4: one record asked the same device_status (and 4 a field of its own): no conflict.
        {"device_record_id": rid2, "device_status": status2},
        {"serial_number": serial2, "device_status": status2, "device_ownership": "company"},
        # 5: plain drift.
        {"device_record_id": rid3, "device_status": other_status(status3)},
        # 6 and 7: one Graph device, by object id and by display name, enabled and disabled: a conflict.
        {"id": oid, "account_enabled": enabled, "extension_attributes": {"extensionAttribute3": "x"}},
        {"display_name": name, "account_enabled": not enabled, "extension_attributes": {"extensionAttribute3": "x"}},
        # 8: in sync.
        {"id": oid2, "account_enabled": enabled2},
    ]

    run = audit(audit_baseline=baseline)

    assert run.returncode == 0, run.stdout[-3000:]
    assert writes(feishu, graph) == []
    report = audit.report
    rows = by_entry(report)
    assert dict((n, rows[n]["status"]) for n in rows) == {
        1: "conflict", 2: "conflict", 3: "in_sync", 4: rows[4]["status"], 5: "drifted",
        6: "conflict", 7: "conflict", 8: "in_sync"}
    assert rows[4]["status"] in ("in_sync", "drifted")
    assert rows[1]["message"] == 'found the same device as entry 2 (serial_number=%s), which asks device_status="%s"' % (
        serial, other_status(status))
    assert rows[2]["message"] == 'found the same device as entry 1 (device_record_id=%s), which asks device_status="%s"' % (
        rid, status)
    assert rows[6]["message"] == "found the same device as entry 7 (display_name=%s), which asks account_enabled=%s" % (
        name, json.dumps(not enabled))
    assert rows[7]["message"] == "found the same device as entry 6 (id=%s), which asks account_enabled=%s" % (
        oid, json.dumps(enabled))
    assert rows[1]["object_id"] == rows[2]["object_id"] == rid and rows[6]["object_id"] == rows[7]["object_id"] == oid
    assert [row["entry"] for row in report["conflicts"]] == [1, 2, 6, 7]
    assert report["summary"]["conflicts"] == 4 and report["summary"]["entries"] == 8
    assert report["summary"]["differences"] == sum(len(row["differences"]) for row in report["drifted"])
    assert report["format_version"] == 1
    html = audit.html
    assert html.count('class="conflict-row"') == 4 and 'id="count-conflicts">4<' in html

    run = audit(audit_baseline=baseline, audit_fail_on_drift=True)

    assert run.returncode != 0
    assert failed_task(run)[0] == "Fail on drift (audit_fail_on_drift)"
    assert writes(feishu, graph) == []


def test_csv_rows_of_empty_cells_are_skipped_like_blank_lines(audit, feishu):
    (rid, serial, status), (rid2, serial2, status2) = desktop_records(feishu)[:2]
    rows = ["%s,,%s" % (rid, status), ",%s,%s" % (serial2, other_status(status2))]
    clean = audit.csv("clean.csv", "device_record_id,serial_number,device_status\n%s\n" % "\n".join(rows))
    gappy = audit.csv("gappy.csv", "device_record_id,serial_number,device_status\n,,\n%s\n\n , ,\n,,,\n%s\n,,\n" % tuple(rows))

    run = audit(audit_baseline_file=clean)
    assert run.returncode == 0, run.stdout[-3000:]
    expected = audit.report
    run = audit(audit_baseline_file=gappy)
    assert run.returncode == 0, run.stdout[-3000:]
    found = audit.report

    assert found["summary"] == expected["summary"] and found["summary"]["entries"] == 2
    for key in ("drifted", "in_sync", "unmatched", "ambiguous", "errors", "conflicts"):
        assert found[key] == expected[key], key


def test_a_csv_row_with_a_cell_beyond_the_header_is_refused_naming_its_line_before_any_request(audit, feishu, graph):
    (rid, dummy, status), (rid2, dummy, status2) = desktop_records(feishu)[:2]
    text = ("# the baseline\n"
            "device_record_id,device_status\n"
            "%s,%s,\n"                  # line 3: a trailing empty cell is no extra cell
            "\n"
            "%s,%s,company\n") % (rid, status, rid2, status2)  # line 5

    run = audit(audit_baseline_file=audit.csv("extra.csv", text))

    assert run.returncode != 0
    task, message = failed_task(run)
    assert task == "Refuse a malformed baseline (nothing has been read from the directories yet)"
    assert "entry 2: CSV line 5: 1 cell(s) beyond the header's 2 column(s): [\"company\"]" in message, message
    assert "entry 1" not in message
    assert feishu.wire.entries() == [] and graph.wire.entries() == []


def test_an_audit_in_which_every_entry_errored_fails_after_writing_its_report(audit, feishu, graph):
    (rid, dummy, status), (rid2, dummy, status2) = desktop_records(feishu)[:2]
    baseline = [{"device_record_id": rid, "device_status": status},
                {"device_record_id": rid2, "device_status": other_status(status2)}]
    refused = dict(base_url=feishu.url, app_id=feishu.app_id, app_secret="not-the-secret")

    run = audit(audit_baseline=baseline, audit_feishu_connection=refused)

    assert run.returncode != 0, "an audit in which every entry errored ended with exit 0"
    report = audit.report
    assert report is not None, run.stdout[-3000:]
    assert report["summary"]["errors"] == report["summary"]["entries"] == 2
    task, message = failed_task(run)
    assert task == "Fail when every baseline entry errored"
    assert message.startswith("All 2 baseline entries errored, nothing was compared (first error: ")
    assert report["errors"][0]["message"] in message and "not-the-secret" not in run.stdout
    assert writes(feishu, graph) == []


def test_an_audit_in_which_some_entries_errored_still_succeeds(audit, feishu, graph):
    (rid, dummy, status), = desktop_records(feishu)[:1]
    (oid, dummy, enabled), = windows_devices(graph)[:1]
    baseline = [{"device_record_id": rid, "device_status": status}, {"id": oid, "account_enabled": enabled}]
    refused = dict(base_url=feishu.url, app_id=feishu.app_id, app_secret="not-the-secret")

    run = audit(audit_baseline=baseline, audit_feishu_connection=refused)

    assert run.returncode == 0, run.stdout[-3000:]
    summary = audit.report["summary"]
    assert (summary["errors"], summary["in_sync"]) == (1, 1)


# the record of an audit: the reports and set_stats


@pytest.mark.parametrize("case", ["under-a-file", "a-file", "json-is-a-folder"])
def test_an_audit_whose_reports_cannot_be_written_fails_before_any_request_naming_the_path(
        audit, feishu, graph, tmp_path, case):
    (rid, dummy, status), = desktop_records(feishu)[:1]
    plain = tmp_path / "plain-file"
    plain.write_text("not a folder\n")
    (tmp_path / "json-is-a-folder" / "drift-report.json").mkdir(parents=True)
    report_dir = {"under-a-file": plain / "reports", "a-file": plain, "json-is-a-folder": tmp_path / "json-is-a-folder"}[case]

    run = audit(audit_baseline=[{"device_record_id": rid, "device_status": status}], audit_report_dir=str(report_dir))

    assert run.returncode != 0
    task, message = failed_task(run)
    assert task == "Stop before any request, naming the report path that cannot be written"
    assert message.startswith("Nothing was read. The reports cannot be written") and str(report_dir) in message
    assert feishu.wire.entries() == [] and graph.wire.entries() == []


def published(run, task):
    """The audit_summary the role's set_stats task of this name published."""
    (entry,) = [entry for entry in run.results if entry["task"].split(" : ")[-1] == task]
    return entry["result"]["ansible_stats"]["data"]["audit_summary"]


def test_a_report_folder_lost_during_the_audit_still_leaves_set_stats_and_fails(audit, feishu, graph, tmp_path):
    (rid, dummy, status), = desktop_records(feishu)[:1]
    report_dir = tmp_path / "reports"
    handle = feishu.handle

    def take_the_folder_away_on_the_first_read(request):
        # Synchronous, inside the emulator: the folder is a file before the first read is answered.
        if report_dir.is_dir():
            shutil.rmtree(str(report_dir))
            report_dir.write_text("a file now\n")
        return handle(request)

    feishu.handle = take_the_folder_away_on_the_first_read

    run = audit(audit_baseline=[{"device_record_id": rid, "device_status": status}])

    assert run.returncode != 0
    summary = published(run, "Publish the summary for AWX workflows (set_stats audit_summary)")
    assert (summary["entries"], summary["in_sync"]) == (1, 1)
    again = published(run, "Publish the summary again, saying the report could not be written")
    assert again["report_error"] and again["in_sync"] == 1
    task, message = failed_task(run)
    assert task == "Fail, the report could not be written"
    assert message.startswith("The drift report could not be written (")
    assert writes(feishu, graph) == []
