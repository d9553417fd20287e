"""Hostile input for the audit, trust, release and connection filters: every bad value is refused with an
AnsibleFilterError that names it (never a Python traceback), and nothing is lost or reported wrongly in silence."""

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.fleetguard.devices.plugins.filter.audit import audit_report, audit_retry, baseline_csv
from ansible_collections.fleetguard.devices.plugins.filter.connection import connection_options
from ansible_collections.fleetguard.devices.plugins.filter.devices import baseline_plan
from ansible_collections.fleetguard.devices.plugins.filter.release import release_refusals
from ansible_collections.fleetguard.devices.plugins.filter.trust import trust_lookups, trust_preflight
from ansible_collections.fleetguard.devices.plugins.plugin_utils.identifiers import identifier_list

GUID = "6f1c9d3e-1234-4abc-9def-0123456789ab"


def refused(match, function, *args):
    with pytest.raises(AnsibleFilterError, match=match) as caught:
        function(*args)
    return str(caught.value)


# --- baseline_csv: the header --------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["name,name", "name, name ", "serial_number,name,device_status,name"])
def test_a_column_named_twice_is_refused_instead_of_keeping_the_last(header):
    message = refused("baseline_csv: CSV line 2: the header names the column name twice", baseline_csv,
                      "# baseline\n%s\nx,y,z,w\n" % header)
    assert "columns" in message


def test_a_column_without_a_name_before_a_named_one_is_refused():
    refused(r"baseline_csv: CSV line 1: column 1 of the header has no name", baseline_csv, ",serial_number\n2,S1\n")
    refused(r"baseline_csv: CSV line 1: column 2 of the header has no name", baseline_csv,
            "name,,serial_number\nx,,S1\n")


def test_empty_columns_at_the_header_end_are_no_columns_and_a_value_under_them_is_an_extra_cell():
    # A spreadsheet saved as CSV often ends every line with a comma.
    assert baseline_csv("name,serial_number,\nx,S1,\n") == [{"name": "x", "serial_number": "S1"}]
    assert baseline_csv("name,\n1,2\n") == [
        {"name": "1", "_extra_cells": {"line": 2, "columns": 1, "cells": ["2"]}}]


def test_an_empty_row_before_the_header_is_skipped_not_taken_as_the_header():
    assert baseline_csv(",,\nname,serial_number\nx,S1\n") == [{"name": "x", "serial_number": "S1"}]


@pytest.mark.parametrize("text, separator", [("name;serial_number\nx;S1\n", "semicolon"),
                                             ("name\tserial_number\nx\tS1\n", "tab")])
def test_a_file_separated_by_semicolons_or_tabs_is_refused_naming_the_separator(text, separator):
    refused("baseline_csv: CSV line 1: the column name.*holds a %s: the fields of a baseline are separated by commas"
            % separator, baseline_csv, text)


def test_the_readers_own_key_for_extra_cells_cannot_be_a_column():
    refused("baseline_csv: CSV line 1: _extra_cells cannot be a column name", baseline_csv, "name,_extra_cells\n1,2\n")


def test_a_header_in_another_case_reaches_the_plan_which_refuses_it_by_name():
    plan = baseline_plan(baseline_csv("SERIAL_NUMBER,device_status\nS1,trusted\n"))
    assert "unknown field SERIAL_NUMBER" in plan["entries"][0]["problems"]


def test_a_header_alone_with_or_without_line_end_gives_no_entries():
    assert baseline_csv("name,serial_number") == []
    assert baseline_csv("\n\n  \nname,serial_number\n\n") == []


# --- baseline_csv: quotes, bytes and line ends ---------------------------------------------------------------


def test_a_quote_never_closed_is_refused_naming_its_line_instead_of_swallowing_the_rest():
    text = 'serial_number,name\nS1,ok\nS2,"Smith, John\nS3,x\nS4,y\n'
    refused(r"baseline_csv: CSV line 3: the quoted field that starts here is never closed", baseline_csv, text)


def test_a_quote_never_closed_until_a_later_quote_is_refused_at_the_text_after_that_quote():
    # S2's quote is closed by the first quote of line 4: the reader would merge lines 3 and 4 into one cell.
    text = 'serial_number,name\nS1,ok\nS2,"Smith\nS3,"Jones, Bob"\n'
    refused(r'baseline_csv: CSV line 4: text after the closing quote of a field \(J\)', baseline_csv, text)


def test_spaces_after_a_closing_quote_and_quotes_inside_an_unquoted_cell_are_still_fine():
    assert baseline_csv('name,serial_number\n"a, b" ,S1\n13" MacBook,S2\n') == [
        {"name": "a, b", "serial_number": "S1"}, {"name": '13" MacBook', "serial_number": "S2"}]


def test_a_nul_character_is_refused_naming_its_line():
    refused(r"baseline_csv: CSV line 3 holds a NUL character", baseline_csv, "name,serial_number\nx,S1\ny,S\x002\n")
    # A UTF-16 file read as UTF-8: a NUL after every character.
    refused(r"baseline_csv: CSV line 1 holds a NUL character .*UTF-16", baseline_csv, "n\x00a\x00m\x00e\x00\n\x00")


def test_a_file_with_carriage_returns_alone_as_line_ends_reads_every_row():
    # The old Mac line end (Excel's "CSV (Macintosh)"): the rows were glued to the header and lost.
    assert baseline_csv("name,serial_number\rx,S1\ry,S2\r") == [{"name": "x", "serial_number": "S1"},
                                                                {"name": "y", "serial_number": "S2"}]
    assert baseline_csv('name,serial_number\r"a\rb",S1\r\n') == [{"name": "a\nb", "serial_number": "S1"}]


def test_invisible_format_characters_at_a_cells_ends_are_trimmed_like_survey_text():
    rows = baseline_csv("\ufeff\ufeffserial_number,device_status\n\u200bS1\u200b,trusted\ufeff\n")
    assert rows == [{"serial_number": "S1", "device_status": "trusted"}]


def test_a_field_over_the_csv_modules_limit_is_refused_naming_its_line():
    refused(r"baseline_csv: CSV line 3 cannot be read: field larger than field limit", baseline_csv,
            "name,serial_number\nx,S1\n%s,S2\n" % ("x" * 200000))


@pytest.mark.parametrize("value, kind", [(b"name\nx\n", "bytes"), (None, "null"), (5, "int"), (["a,b"], "list")])
def test_anything_but_text_is_refused_naming_its_type(value, kind):
    refused("baseline_csv: expected the text of a CSV file, not %s" % ("null" if value is None else "a " + kind),
            baseline_csv, value)


def test_a_cell_that_looks_like_a_spreadsheet_formula_is_kept_as_text():
    assert baseline_csv("name,serial_number\n=HYPERLINK(\"x\"),S1\n") == [{"name": '=HYPERLINK("x")', "serial_number": "S1"}]


# --- audit_retry / audit_report ------------------------------------------------------------------------------


def feishu_plan():
    return baseline_plan([{"serial_number": "S1", "device_status": "trusted"},
                          {"serial_number": "s1", "device_status": "trusted"}])


def call(item, **result):
    return dict(result, item=item, failed=False, changed=False)


@pytest.mark.parametrize("first_pass", ["abc", 5, {"results": "abc"}, {"results": {"a": 1}}, [{"results": [None]}],
                                        {"changed": False}])
def test_a_first_pass_that_is_no_registered_loop_is_refused(first_pass):
    refused("audit_retry: first_pass", audit_retry, feishu_plan(), first_pass)
    refused("audit_report: first_pass", audit_report, feishu_plan(), first_pass, [])


def test_a_skipped_or_missing_pass_has_no_results():
    plan = feishu_plan()
    assert audit_retry(plan, None) == [] and audit_retry(plan, {"skipped": True, "changed": False}) == []
    assert audit_report(plan, None, [{"skipped": True}])["summary"]["errors"] == 2


@pytest.mark.parametrize("item", [None, "a", {"entries": "1"}, {"entries": [0]}, {"entries": [3]}, {"entries": [True]},
                                  {"ids": ["S1"]}])
def test_a_failed_result_whose_item_names_no_entry_of_the_plan_is_refused(item):
    plan = feishu_plan()
    result = {"msg": "failed", "item": item} if item is not None else {"msg": "failed"}
    refused(r"audit_retry: first_pass result 1: .*entr", audit_retry, plan, {"results": [result]})


def test_a_second_pass_result_without_its_entry_is_refused():
    refused(r"audit_report: second_pass result 1: .*entry", audit_report, feishu_plan(), None,
            [{"results": [{"msg": "x", "item": {"entries": [1]}}]}])


def test_an_entry_of_a_plan_is_found_by_its_number_not_its_position():
    plan = feishu_plan()
    plan["entries"] = plan["entries"][1:]
    refused(r"audit_retry: first_pass result 1: .*entry 1, which the plan does not have", audit_retry, plan,
            {"results": [call(plan["feishu_groups"][0], msg="x")]})


@pytest.mark.parametrize("plan", [{"entries": None}, {"entries": [1]}, {"entries": [{"entry": 1}]}])
def test_a_plan_whose_entries_are_malformed_is_refused(plan):
    refused("audit_report: needs the plan of baseline_plan", audit_report, plan, None, None)


def test_a_plan_that_numbers_two_entries_alike_is_refused():
    plan = feishu_plan()
    plan["entries"][1] = dict(plan["entries"][1], entry=1)
    refused("audit_report: the plan numbers two entries 1", audit_report, plan, None, None)


@pytest.mark.parametrize("baseline", [["a"], "file.csv", 5])
def test_a_baseline_summary_that_is_no_mapping_is_refused(baseline):
    refused("audit_report: baseline must be a mapping", audit_report, feishu_plan(), None, None, baseline)


def compared(plan, result):
    return audit_report(plan, {"results": [result]}, None, {})


@pytest.mark.parametrize("changes", [
    {"outcomes": None}, {"outcomes": {"a": 1}}, {"outcomes": []}, {"outcomes": ["unchanged", "unchanged"]},
    {"outcomes": [{"device_record_id": "71", "outcome": "changed"}] * 2, "device_records": [], "changed_records": []},
    {"outcomes": [{"device_record_id": "71", "outcome": "changed"}] * 2, "device_records": [],
     "changed_records": ["71"]},
    {"outcomes": [{"device_record_id": "71", "outcome": "changed"}] * 2, "device_records": [],
     "changed_records": ["71"], "diff": [{"after": {}}]},
    {"outcomes": [{"device_record_id": "71", "outcome": "exploded"}] * 2, "device_records": []},
    {"outcomes": [{"device_record_id": "71", "outcome": "unchanged"}] * 2, "device_records": ["FG-1", "FG-2"]},
])
def test_a_module_result_of_the_wrong_shape_is_refused_naming_the_entry(changes):
    plan = feishu_plan()
    refused(r"audit_report: first_pass result 1 \(entry 1, serial_number=S1\)", compared, plan,
            call(plan["feishu_groups"][0], **changes))


def test_a_result_whose_item_is_not_the_plans_group_is_refused():
    plan = feishu_plan()
    stale = dict(plan["feishu_groups"][0], ids=["X"])
    refused(r"audit_report: first_pass result 1 \(entry 1, serial_number=S1\): its item's ids do not hold S1",
            compared, plan, call(stale, outcomes=[{"device_record_id": "71", "outcome": "unchanged"}]))


@pytest.mark.parametrize("problems", ["x", ["x"], [{"value": "S1", "reason": "ambiguous", "candidates": "71"}]])
def test_lookup_problems_of_the_wrong_shape_are_refused(problems):
    plan = feishu_plan()
    calls = audit_retry(plan, {"results": [call(plan["feishu_groups"][0], msg="x")]})
    refused(r"audit_report: second_pass result 1 \(entry 1, serial_number=S1\)", audit_report, plan,
            {"results": [call(plan["feishu_groups"][0], msg="x")]}, [{"results": [call(calls[0], msg="y", problems=problems)]}])


def test_an_ambiguous_lookup_without_candidates_has_none():
    plan = feishu_plan()
    calls = audit_retry(plan, {"results": [call(plan["feishu_groups"][0], msg="x")]})
    second = [call(calls[0], msg="y", problems=[{"value": "S1", "reason": "ambiguous"}])]
    report = audit_report(plan, {"results": [call(plan["feishu_groups"][0], msg="x")]}, [{"results": second}])
    assert report["ambiguous"][0]["candidates"] == [] and report["ambiguous"][0]["message"] == "matches 0 device records"


def test_two_spellings_of_one_graph_object_id_are_both_compared():
    plan = baseline_plan([{"id": GUID, "account_enabled": True}, {"id": GUID.upper(), "account_enabled": True}])
    group = plan["msgraph_groups"][0]
    assert group["ids"] == [GUID]
    result = call(group, outcomes=[{"identifier": GUID, "id": GUID, "outcome": "unchanged"}],
                  devices=[{"id": GUID, "displayName": "FG-1"}], changed_devices=[], diff=[])
    report = compared(plan, result)
    assert report["summary"]["in_sync"] == 2 and [row["device"] for row in report["in_sync"]] == ["FG-1", "FG-1"]


def test_a_device_whose_change_check_mode_cannot_predict_is_an_error_not_in_sync():
    plan = baseline_plan([{"id": GUID, "account_enabled": True}])
    result = call(plan["msgraph_groups"][0], outcomes=[{"identifier": GUID, "id": GUID, "outcome": "uncertain",
                                                        "reason": "the API's rules do not place it"}],
                  devices=[{"id": GUID, "displayName": "FG-1"}], changed_devices=[], diff=[])
    row = compared(plan, result)["errors"][0]
    assert (row["status"], row["message"], row["device"]) == ("error", "the API's rules do not place it", "FG-1")


def test_an_outcome_without_a_reason_is_named_by_its_outcome():
    plan = baseline_plan([{"id": GUID, "account_enabled": True}])
    result = call(plan["msgraph_groups"][0], outcomes=[{"identifier": GUID, "id": GUID, "outcome": "failed", "reason": None}],
                  devices=[{}], changed_devices=[], diff=[])
    assert compared(plan, result)["errors"][0]["message"] == "failed"


def test_devices_without_an_object_id_are_never_in_conflict_with_each_other():
    plan = baseline_plan([{"serial_number": "S1", "device_status": "trusted"},
                          {"device_name": "FG-2", "device_status": "untrusted"}])
    results = [call(group, outcomes=[{"identifier": group["ids"][0], "device_record_id": None, "outcome": "unchanged"}],
                    device_records=[{}], changed_records=[], diff=[]) for group in plan["feishu_groups"]]
    report = audit_report(plan, {"results": results}, None, {})
    assert report["summary"]["conflicts"] == 0 and report["summary"]["in_sync"] == 2


def test_an_entry_the_plan_refused_says_why_it_was_not_compared():
    plan = baseline_plan([{"serial_number": "S1"}])
    assert audit_report(plan, None, None)["errors"][0]["message"] == "not compared: no desired state to compare"


def test_unicode_names_and_identifiers_pass_through_unchanged():
    plan = baseline_plan([{"device_name": "Zoë's iPad 📱", "name": "Зоя", "device_status": "trusted"}])
    result = call(plan["feishu_groups"][0], outcomes=[{"identifier": "Zoë's iPad 📱", "device_record_id": "71",
                                                       "outcome": "unchanged"}],
                  device_records=[{"device_record_id": "71", "device_name": "Zoë's iPad 📱"}], changed_records=[], diff=[])
    row = compared(plan, result)["in_sync"][0]
    assert (row["name"], row["device"]) == ("Зоя", "Zoë's iPad 📱")


# --- identifier_list -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, expected", [
    ("Smith, John\nDoe, Jane", ["Smith, John", "Doe, Jane"]), (" a , , b ", ["a", "b"]), (["a,b", " c "], ["a,b", "c"]),
    (5, ["5"]), ([1, "1"], ["1"]), (["A", "a"], ["A", "a"]), ([""], []), ("\u200bFG-1\ufeff", ["FG-1"]),
])
def test_identifier_lists_read_as_documented(value, expected):
    assert identifier_list(value) == expected


@pytest.mark.parametrize("value", [True, {"a": 1}, {"x"}, ["a", ["b"]], [None], [b"x"], [{"a": 1}]])
def test_identifier_lists_refuse_what_is_no_identifier(value):
    refused("identifier_list: ", identifier_list, value)


# --- trust_lookups / trust_preflight -------------------------------------------------------------------------


def identifiers(**given):
    names = ("feishu_device_record_ids", "feishu_serial_numbers", "feishu_device_names", "msgraph_ids",
             "msgraph_device_ids", "msgraph_display_names")
    return dict(("release_%s" % name, given.get(name, [])) for name in names)


def test_inventory_ids_given_as_text_are_split_like_an_identifier_input_not_into_characters():
    found = trust_lookups(identifiers(), {"feishu_ids": "71, 72"})
    assert found["feishu"] == [{"field": "device_record_id", "ids": ["71", "72"]}]


@pytest.mark.parametrize("inventory", [["71"], "71", 5])
def test_an_inventory_that_is_no_mapping_is_refused_not_ignored(inventory):
    refused("trust_lookups: expected the inventory_devices result", trust_lookups, identifiers(), inventory)


def test_an_identifier_variable_named_by_something_else_than_text_is_refused():
    variables = identifiers()
    variables[5] = []
    refused("trust_lookups: expected identifier variable names", trust_lookups, variables)


def test_localhost_or_a_group_name_is_an_identifier_like_any_other():
    found = trust_lookups(identifiers(msgraph_display_names="localhost, all"))
    assert found["msgraph"] == [{"field": "display_name", "ids": ["localhost", "all"]}]


@pytest.mark.parametrize("registered", ["abc", 5, ["x"], {"results": "abc"}, {"results": ["abc"]},
                                        {"results": [{"outcomes": {"id": "a"}}]}, {"results": [{"outcomes": ["a"]}]},
                                        {"changed": False}])
def test_a_preflight_pass_of_the_wrong_shape_is_refused_not_read_as_no_problem(registered):
    # The pre-flight is the gate before any write: a pass it cannot read must stop the role.
    refused("trust_preflight: the Graph pass", trust_preflight, None, registered)


def test_a_preflight_pass_not_run_or_skipped_has_no_problem():
    assert trust_preflight(None, {"skipped": True, "changed": False}) == {"problems": [], "feishu_ids": [],
                                                                          "msgraph_ids": []}


# --- release_refusals ----------------------------------------------------------------------------------------


def tagged(tag, enabled=False):
    return {"devices": [{"id": "a", "displayName": "FG-A", "accountEnabled": enabled,
                         "extensionAttributes": {"extensionAttribute15": tag}}]}


@pytest.mark.parametrize("prefix", ["", None, 5, "   "])
def test_an_empty_tag_prefix_is_refused_since_every_tag_would_count_as_a_quarantine(prefix):
    refused("release_refusals: tag_prefix must be", release_refusals, None, tagged("someone else's tag"),
            "extensionAttribute15", prefix)


@pytest.mark.parametrize("attribute", [None, "", "extensionAttribute16", "displayName"])
def test_a_tag_attribute_that_is_no_extension_attribute_is_refused(attribute):
    refused("release_refusals: tag_attribute must be one of extensionAttribute1..extensionAttribute15",
            release_refusals, None, tagged("q:1"), attribute, "q:")


@pytest.mark.parametrize("enable, refusals", [("false", 0), ("no", 0), (False, 0), ("true", 1), (True, 1), (1, 1)])
def test_enable_accounts_given_as_text_is_read_as_a_boolean(enable, refusals):
    assert len(release_refusals(None, tagged(None), "extensionAttribute15", "q:", enable)) == refusals


def test_enable_accounts_that_is_no_boolean_is_refused():
    refused("release_refusals: enable_accounts must be a boolean", release_refusals, None, tagged(None),
            "extensionAttribute15", "q:", "maybe")


@pytest.mark.parametrize("current, which", [
    ({"device_records": ["71"]}, "Feishu"), ({"device_records": "71"}, "Feishu"), ({"device_records": {"a": 1}}, "Feishu"),
    ("abc", "Feishu"),
])
def test_feishu_records_of_the_wrong_shape_are_refused(current, which):
    refused("release_refusals: the %s" % which, release_refusals, current, None, "extensionAttribute15", "q:")


@pytest.mark.parametrize("current", [{"devices": [None]}, {"devices": "abc"}, {"devices": [{"id": "a", "extensionAttributes": ["x"]}]},
                                     ["x"]])
def test_graph_devices_of_the_wrong_shape_are_refused(current):
    refused("release_refusals: the Graph", release_refusals, None, current, "extensionAttribute15", "q:")


@pytest.mark.parametrize("status", [None, "0", "unknown", 3, False, True])
def test_a_feishu_record_whose_status_is_neither_trusted_nor_untrusted_is_refused_not_released(status):
    records = {"device_records": [{"device_record_id": "71", "device_name": "FG-A", "device_status": status}]}
    refusals = release_refusals(records, None, "extensionAttribute15", "q:")
    assert len(refusals) == 1 and refusals[0].startswith("Feishu record 71 (FG-A) ")


def test_a_feishu_record_trusted_or_untrusted_or_unknown_reads_as_before():
    records = {"device_records": [{"device_record_id": "71", "device_status": 1}, {"device_record_id": "72", "device_status": 2},
                                  {"device_record_id": "73", "device_status": 0}]}
    assert release_refusals(records, None, "extensionAttribute15", "q:") == [
        'Feishu record 73 (no name) is "unknown", not untrusted: it shows no sign of a quarantine']


# --- connection_options --------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["s3cret-token", 0, False, ["s3cret-token"], b"s3cret-token"])
def test_a_connection_that_is_no_mapping_is_refused_without_its_value(value):
    message = refused("connection_options: expected a mapping of connection options, not a", connection_options, value)
    assert "s3cret" not in message
