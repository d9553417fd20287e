"""baseline_csv / audit_retry / audit_report: the audit role's reading of a CSV baseline and its drift report.

The report is compiled from the modules' data (outcomes, problems, diff, error.reason), never from their message
text; what is proved here is what the role writes as JSON.
"""

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.fleetguard.devices.plugins.filter.audit import audit_report, audit_retry, baseline_csv
from ansible_collections.fleetguard.devices.plugins.filter.devices import baseline_plan

# --- baseline_csv --------------------------------------------------------------------------------------------


def test_a_quoted_field_may_span_two_lines_and_hold_commas_and_doubled_quotes():
    # The regex reader this replaced split such a row in two at the line break.
    text = ('serial_number,name,device_status\n'
            'C02FG0001,"Smith, John\'s ""work""\nlaptop",trusted\n'
            'C02FG0002,plain,untrusted\n')
    assert baseline_csv(text) == [
        {"serial_number": "C02FG0001", "name": "Smith, John's \"work\"\nlaptop", "device_status": "trusted"},
        {"serial_number": "C02FG0002", "name": "plain", "device_status": "untrusted"},
    ]


def test_a_line_inside_a_quoted_field_is_data_even_when_it_looks_like_a_comment_or_is_blank():
    text = 'serial_number,name,device_status\nC02FG0001,"first\n\n# not a comment",trusted\n'
    assert baseline_csv(text) == [{"serial_number": "C02FG0001", "name": "first\n\n# not a comment",
                                   "device_status": "trusted"}]


def test_a_byte_order_mark_and_carriage_returns_are_dropped():
    text = '\ufeffserial_number,device_status\r\nC02FG0001,trusted\r\n'
    assert baseline_csv(text) == [{"serial_number": "C02FG0001", "device_status": "trusted"}]


def test_blank_and_comment_lines_and_empty_rows_are_skipped_and_cells_are_trimmed():
    text = '# the Q3 baseline\n\n serial_number , device_status \n  # a comment\n,,\nC02FG0001 ,  "trusted" \n'
    assert baseline_csv(text) == [{"serial_number": "C02FG0001", "device_status": "trusted"}]


def test_a_row_shorter_than_the_header_has_only_its_cells():
    assert baseline_csv("serial_number,device_status,name\nC02FG0001,trusted\n") == [
        {"serial_number": "C02FG0001", "device_status": "trusted"}]


def test_cells_beyond_the_header_are_kept_with_the_line_the_row_starts_on():
    text = 'serial_number,device_status\n# comment\nC02FG0001,"two\nlines",company, ,x\n'
    rows = baseline_csv(text)
    assert rows == [{"serial_number": "C02FG0001", "device_status": "two\nlines",
                     "_extra_cells": {"line": 3, "columns": 2, "cells": ["company", "x"]}}]
    plan = baseline_plan(rows)
    assert "CSV line 3: 2 cell(s) beyond the header's 2 column(s): [\"company\", \"x\"]" in plan["entries"][0]["problems"]


def test_a_header_alone_or_an_empty_file_gives_no_entries():
    assert baseline_csv("serial_number,device_status\n") == []
    assert baseline_csv("") == []


def test_anything_but_text_fails_naming_it():
    with pytest.raises(AnsibleFilterError, match="baseline_csv: expected the text of a CSV file, not a list"):
        baseline_csv(["a,b"])


def test_the_filter_reads_a_file_through_jinja(render):
    text = 'serial_number,name,device_status\nC02FG0001,"a, b",trusted\n'
    assert render("text | fleetguard.devices.baseline_csv", text=text) == [
        {"serial_number": "C02FG0001", "name": "a, b", "device_status": "trusted"}]


# --- audit_retry / audit_report ------------------------------------------------------------------------------

BASELINE = {"file": None, "variable_entries": 0, "inventory_hosts": 0, "undeclared_hosts": []}


def call(group, **result):
    """One loop result of a module call, as the role registers it (failed_when: false)."""
    return dict(result, item=group, failed=False, changed=False)


def feishu_result(group, outcomes, records, changed=(), diff=()):
    return call(group, outcomes=outcomes, device_records=records, changed_records=list(changed), diff=list(diff))


def compiled(plan, first, second=()):
    return audit_report(plan, [{"results": first}], [{"results": list(second)}], BASELINE, "Drift")


def test_in_sync_and_drifted_entries_come_from_outcomes_and_diff():
    plan = baseline_plan([{"serial_number": "S1", "device_status": "trusted"},
                          {"serial_number": "S2", "device_status": "trusted"}])
    group = plan["feishu_groups"][0]
    outcomes = [{"identifier": "S1", "device_record_id": "71", "outcome": "unchanged"},
                {"identifier": "S2", "device_record_id": "72", "outcome": "changed"}]
    records = [{"device_record_id": "71", "device_name": "FG-1"}, {"device_record_id": "72", "device_name": "FG-2"}]
    diff = [{"before": {"device_status": "untrusted"}, "after": {"device_status": "trusted"}}]
    report = compiled(plan, [feishu_result(group, outcomes, records, ["72"], diff)])
    assert report["summary"] == {"entries": 2, "differences": 1, "drifted": 1, "in_sync": 1, "unmatched": 0,
                                 "ambiguous": 0, "errors": 0, "conflicts": 0}
    assert report["in_sync"][0]["device"] == "FG-1" and report["in_sync"][0]["object_id"] == "71"
    assert report["drifted"][0]["differences"] == [{"property": "device_status", "current": "untrusted",
                                                    "desired": "trusted"}]
    assert list(report) == ["report", "format_version", "title", "baseline", "summary", "drifted", "unmatched",
                            "ambiguous", "errors", "conflicts", "in_sync"]
    assert report["baseline"]["entries"] == 2 and report["title"] == "Drift"


def test_each_differing_extension_attribute_is_a_difference_of_its_own():
    plan = baseline_plan([{"id": "aa", "extension_attributes": {"extensionAttribute1": "x", "extensionAttribute2": None}}])
    group = plan["msgraph_groups"][0]
    result = call(group, outcomes=[{"identifier": "aa", "id": "aa", "outcome": "changed"}],
                  devices=[{"id": "aa", "displayName": "FG-A"}], changed_devices=["aa"],
                  diff=[{"before": {"extensionAttributes": {"extensionAttribute1": "y", "extensionAttribute2": "z"}},
                         "after": {"extensionAttributes": {"extensionAttribute1": "x", "extensionAttribute2": None}}}])
    row = compiled(plan, [result])["drifted"][0]
    assert row["differences"] == [
        {"property": "extensionAttributes.extensionAttribute1", "current": "y", "desired": "x"},
        {"property": "extensionAttributes.extensionAttribute2", "current": "z", "desired": None}]


def test_a_failed_group_is_retried_entry_by_entry_and_lookup_problems_become_statuses():
    plan = baseline_plan([{"display_name": "FG-404", "account_enabled": True},
                          {"display_name": "FG-TWO", "account_enabled": True},
                          {"display_name": "FG-OK", "account_enabled": True}])
    group = plan["msgraph_groups"][0]
    first = [call(group, msg="nothing was changed: ...", problems=[])]
    calls = audit_retry(plan, {"results": first})
    assert [(c["entry"], c["ids"]) for c in calls] == [(1, ["FG-404"]), (2, ["FG-TWO"]), (3, ["FG-OK"])]
    second = [
        call(calls[0], msg="nothing was changed: display_name='FG-404' matches no device",
             problems=[{"field": "display_name", "value": "FG-404", "reason": "missing", "candidates": []}]),
        call(calls[1], msg="nothing was changed: ...",
             problems=[{"field": "display_name", "value": "FG-TWO", "reason": "ambiguous", "candidates": ["b1", "b2"]}]),
        call(calls[2], outcomes=[{"identifier": "FG-OK", "id": "c1", "outcome": "unchanged"}],
             devices=[{"id": "c1", "displayName": "FG-OK"}], changed_devices=[], diff=[]),
    ]
    report = compiled(plan, first, second)
    assert report["unmatched"][0]["message"] == "matches no device"
    assert report["ambiguous"][0]["candidates"] == ["b1", "b2"] and report["ambiguous"][0]["message"] == "matches 2 devices"
    assert report["in_sync"][0]["entry"] == 3


def test_an_error_says_the_refusals_reason_from_the_error_data_not_the_modules_lead_in():
    plan = baseline_plan([{"display_name": "FG-MAC", "account_enabled": False}])
    call_one = audit_retry(plan, {"results": [call(plan["msgraph_groups"][0], msg="x")]})[0]
    refused = call(call_one, msg="nothing was changed: FG-MAC runs MacMDM: an app-only caller may ...",
                   error={"message": "nothing was changed: FG-MAC runs MacMDM: an app-only caller may ...",
                          "reason": "FG-MAC runs MacMDM: an app-only caller may ..."})
    report = compiled(plan, [call(plan["msgraph_groups"][0], msg="x")], [refused])
    assert report["errors"][0]["message"] == "FG-MAC runs MacMDM: an app-only caller may ..."
    other = call(call_one, msg="GET /devices (HTTP 401) [request id r1]", error={"message": "token refused"})
    report = compiled(plan, [call(plan["msgraph_groups"][0], msg="x")], [other])
    assert report["errors"][0]["message"] == "GET /devices (HTTP 401) [request id r1]"


def test_a_device_outcome_that_failed_is_an_error_with_its_reason():
    plan = baseline_plan([{"serial_number": "S1", "device_status": "trusted"}])
    result = feishu_result(plan["feishu_groups"][0], [{"identifier": "S1", "device_record_id": "71",
                                                       "outcome": "failed", "reason": "HTTP 500"}], [{}])
    row = compiled(plan, [result])["errors"][0]
    assert (row["status"], row["message"], row["object_id"], row["device"]) == ("error", "HTTP 500", "71", "71")


def test_two_identifiers_of_one_device_asking_different_values_are_both_conflicts():
    plan = baseline_plan([{"serial_number": "S1", "device_status": "trusted"},
                          {"device_record_id": "71", "device_status": "untrusted"}])
    results = []
    for group in plan["feishu_groups"]:
        changed = group["desired"]["device_status"] == "untrusted"
        outcome = {"identifier": group["ids"][0], "device_record_id": "71", "outcome": "changed" if changed else "unchanged"}
        diff = [{"before": {"device_status": "trusted"}, "after": {"device_status": "untrusted"}}] if changed else []
        results.append(feishu_result(group, [outcome], [{"device_record_id": "71", "device_name": "FG-1"}],
                                     ["71"] if changed else [], diff))
    report = compiled(plan, results)
    assert report["summary"]["conflicts"] == 2
    messages = dict((row["entry"], row["message"]) for row in report["conflicts"])
    assert messages == {1: 'found the same device as entry 2 (device_record_id=71), which asks device_status="untrusted"',
                        2: 'found the same device as entry 1 (serial_number=S1), which asks device_status="trusted"'}


def test_an_entry_without_a_result_is_an_error_and_a_plan_is_required():
    plan = baseline_plan([{"serial_number": "S1", "device_status": "trusted"}])
    assert compiled(plan, [])["errors"][0]["message"] == "no result for this entry"
    with pytest.raises(AnsibleFilterError, match="audit_report: needs the plan of baseline_plan"):
        audit_report([], [], [])


def test_a_refusal_before_any_write_carries_its_reason_as_data_for_the_report():
    # The module result's `error` is the exception's to_dict(): the report reads `reason` there.
    from ansible_collections.fleetguard.devices.plugins.module_utils.errors import RefusedBeforeWrite

    refused = RefusedBeforeWrite("FG-MAC runs MacMDM: an app-only caller may ...")
    assert str(refused) == "nothing was changed: FG-MAC runs MacMDM: an app-only caller may ..."
    assert refused.to_dict()["reason"] == "FG-MAC runs MacMDM: an app-only caller may ..."
