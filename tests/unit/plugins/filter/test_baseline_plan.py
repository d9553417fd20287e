"""baseline_plan: an audit baseline checked entry by entry, and grouped into one module call per group."""

import os

import pytest
import yaml

from ansible.errors import AnsibleFilterError
from ansible_collections.fleetguard.devices.plugins.filter.devices import baseline_plan
from ansible_collections.fleetguard.devices.plugins.plugin_utils import baseline
from ansible_collections.fleetguard.devices.plugins.module_utils.feishu_records import DEVICE_OWNERSHIP, DEVICE_STATUS
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_properties import EXTENSION_ATTRIBUTES, V1_PROPERTIES

COLLECTION_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))


def entry(raw):
    """The plan's one entry for a one-entry baseline."""
    plan = baseline_plan([raw])
    assert len(plan["entries"]) == 1
    return plan["entries"][0]


def problems(raw):
    return entry(raw)["problems"]


class TestFeishuEntries:
    def test_an_entry_names_its_directory_identifier_and_desired_state(self):
        assert entry({"name": "Finance laptop", "serial_number": " C02FG0001 ", "device_status": "trusted",
                      "device_ownership": "company"}) == {
            "entry": 1, "name": "Finance laptop", "directory": "feishu", "field": "serial_number", "value": "C02FG0001",
            "desired": {"device_status": "trusted", "device_ownership": "company"}, "problems": []}

    @pytest.mark.parametrize("name", list(DEVICE_STATUS))
    def test_every_device_status_of_the_module_table_is_accepted_in_any_case(self, name):
        assert entry({"device_name": "D", "device_status": name.upper()})["desired"] == {"device_status": name}

    @pytest.mark.parametrize("name", list(DEVICE_OWNERSHIP))
    def test_every_device_ownership_of_the_module_table_is_accepted(self, name):
        assert entry({"device_name": "D", "device_ownership": name})["desired"] == {"device_ownership": name}

    def test_an_enum_value_out_of_the_table_names_the_table_and_the_value(self):
        assert problems({"device_name": "D", "device_status": "quarantined"}) == [
            "device_status must be one of %s, not quarantined" % ", ".join(DEVICE_STATUS)]

    def test_an_enum_number_is_not_a_name(self):
        assert problems({"device_name": "D", "device_ownership": 2}) == [
            "device_ownership must be one of unknown, personal, company, not 2"]

    def test_a_numeric_record_id_becomes_a_string(self):
        assert entry({"device_record_id": 7400000000000000001, "device_status": "untrusted"})["value"] == "7400000000000000001"

    def test_graph_fields_on_a_feishu_entry_are_named(self):
        assert problems({"serial_number": "S", "device_status": "trusted", "account_enabled": True,
                         "extensionAttribute3": "x"}) == [
            "account_enabled, extensionAttribute3 cannot be checked on a feishu device (found by serial_number)"]


class TestGraphEntries:
    def test_booleans_may_be_words_in_any_case(self):
        assert entry({"display_name": "FG", "account_enabled": "YES", "is_compliant": "0", "is_managed": "Off"})["desired"] == {
            "account_enabled": True, "is_compliant": False, "is_managed": False}

    def test_a_boolean_stays_a_boolean(self):
        assert entry({"id": "X", "account_enabled": False})["desired"] == {"account_enabled": False}

    def test_a_word_that_is_no_boolean_is_named(self):
        assert problems({"display_name": "FG", "is_managed": "maybe"}) == ["is_managed must be true or false, not maybe"]

    def test_strings_are_trimmed_and_numbers_become_strings(self):
        assert entry({"device_id": "K", "operating_system": " Windows ", "operating_system_version": 10.0})["desired"] == {
            "operating_system": "Windows", "operating_system_version": "10.0"}

    def test_extension_attributes_come_from_the_mapping_and_from_columns_with_every_spelling_of_empty(self):
        desired = entry({"display_name": "FG",
                         "extension_attributes": {"extensionAttribute1": "Corp", "extensionAttribute2": None,
                                                  "extensionAttribute3": "null", "extensionAttribute4": " ~ ",
                                                  "extensionAttribute5": ""},
                         "extensionAttribute15": None, "extensionAttribute6": " Austin "})["desired"]
        assert desired == {"extension_attributes": {
            "extensionAttribute1": "Corp", "extensionAttribute2": None, "extensionAttribute3": None,
            "extensionAttribute4": None, "extensionAttribute5": None, "extensionAttribute15": None,
            "extensionAttribute6": "Austin"}}

    def test_an_empty_extension_attribute_column_is_not_compared(self):
        # In a CSV file an empty cell means "not compared"; only null means "must be empty".
        assert problems({"display_name": "FG", "extensionAttribute15": ""}) == ["no desired state to compare"]

    def test_an_extension_attribute_outside_the_module_table_is_named(self):
        assert problems({"display_name": "FG", "extension_attributes": {"extensionAttribute16": "x"}}) == [
            "extension attribute extensionAttribute16 is not one of extensionAttribute1..15"]

    def test_extension_attributes_must_be_a_mapping(self):
        assert problems({"display_name": "FG", "extension_attributes": "x"}) == ["extension_attributes must be a mapping"]

    def test_feishu_fields_on_a_graph_entry_are_named(self):
        assert problems({"id": "X", "device_status": "trusted", "account_enabled": True}) == [
            "device_status cannot be checked on a msgraph device (found by id)"]

    def test_a_rename_is_no_baseline_field(self):
        # display_name identifies the device in a baseline: new_display_name would rename it.
        assert problems({"display_name": "FG", "account_enabled": True, "new_display_name": "X"}) == [
            "unknown field new_display_name"]


class TestMalformedEntries:
    def test_an_entry_that_is_not_a_mapping_is_named(self):
        assert problems("serial_number=S") == [
            "not a mapping of field names to values",
            "needs exactly one of device_record_id, serial_number, device_name, id, device_id, display_name (has none)"]

    def test_an_entry_without_identifier_is_named(self):
        plan_entry = entry({"name": "only a label", "device_status": "trusted"})
        assert plan_entry["problems"] == [
            "needs exactly one of device_record_id, serial_number, device_name, id, device_id, display_name (has none)"]
        assert (plan_entry["directory"], plan_entry["field"], plan_entry["value"]) == (None, "", None)

    def test_an_identifier_left_blank_is_no_identifier(self):
        assert problems({"device_name": "  ", "device_status": "trusted"})[0].endswith("(has none)")

    def test_an_entry_with_two_identifiers_names_both(self):
        assert problems({"serial_number": "S", "display_name": "D", "account_enabled": True})[0].endswith(
            "(has serial_number, display_name)")

    def test_every_unknown_field_is_named(self):
        assert problems({"id": "X", "bogus": 1, "other": 2, "account_enabled": True}) == [
            "unknown field bogus", "unknown field other"]

    def test_an_entry_that_asks_for_nothing_is_named(self):
        assert problems({"serial_number": "S", "device_status": None, "name": "x"}) == ["no desired state to compare"]

    def test_every_problem_of_an_entry_is_named_not_only_the_first(self):
        assert problems({"bogus": 1, "display_name": "FG", "account_enabled": "maybe", "device_ownership": "x"}) == [
            "unknown field bogus", "account_enabled must be true or false, not maybe",
            "device_ownership cannot be checked on a msgraph device (found by display_name)"]

    def test_a_missing_or_empty_label_is_an_empty_string_and_a_number_a_string(self):
        assert [e["name"] for e in baseline_plan([{"id": "A", "account_enabled": True, "name": None},
                                                  {"id": "B", "account_enabled": True},
                                                  {"id": "C", "account_enabled": True, "name": 42}])["entries"]] == ["", "", "42"]


class TestGroups:
    BASELINE = [
        {"serial_number": "A", "device_status": "trusted"},
        {"serial_number": "B", "device_status": "Trusted"},
        {"serial_number": "A", "device_status": "trusted"},
        {"serial_number": "C", "device_status": "untrusted"},
        {"device_name": "A", "device_status": "trusted"},
        {"display_name": "W", "account_enabled": True, "is_managed": True},
        {"display_name": "V", "is_managed": "yes", "account_enabled": "true"},
        {"device_id": "K", "account_enabled": "maybe"},
    ]

    def test_entries_with_the_same_identifier_field_and_desired_state_make_one_group(self):
        plan = baseline_plan(self.BASELINE)
        assert [(g["field"], g["desired"], g["ids"], g["entries"]) for g in plan["feishu_groups"]] == [
            ("serial_number", {"device_status": "trusted"}, ["A", "B"], [1, 2, 3]),
            ("serial_number", {"device_status": "untrusted"}, ["C"], [4]),
            ("device_name", {"device_status": "trusted"}, ["A"], [5]),
        ]

    def test_the_order_of_desired_fields_does_not_split_a_group(self):
        plan = baseline_plan(self.BASELINE)
        assert [(g["field"], g["ids"], g["entries"]) for g in plan["msgraph_groups"]] == [("display_name", ["W", "V"], [6, 7])]
        assert plan["msgraph_groups"][0]["key"] == 'msgraph|display_name|{"account_enabled": true, "is_managed": true}'

    def test_entries_with_problems_are_in_no_group(self):
        plan = baseline_plan(self.BASELINE)
        assert plan["entries"][7]["problems"] and 8 not in [n for g in plan["msgraph_groups"] for n in g["entries"]]

    def test_an_empty_baseline_plans_nothing(self):
        assert baseline_plan([]) == {"entries": [], "feishu_groups": [], "msgraph_groups": []}


class TestConflictsAndCsvRows:
    def test_one_device_asked_two_ways_is_a_conflict_named_in_both_entries(self):
        plan = baseline_plan([{"serial_number": "A", "device_status": "trusted"},
                              {"serial_number": "B", "device_status": "trusted"},
                              {"serial_number": "A", "device_status": "untrusted"}])
        first, second, third = plan["entries"]
        assert first["problems"] == ["conflicts with entry 3 (device_status)"]
        assert second["problems"] == []
        assert third["problems"] == ['serial_number device_status="untrusted" conflicts with entry 1, which asks "trusted" for the same device']
        assert [g["ids"] for g in plan["feishu_groups"]] == [["B"]]

    def test_a_conflict_on_one_extension_attribute_is_named_by_the_attribute(self):
        plan = baseline_plan([{"display_name": "W", "extension_attributes": {"extensionAttribute15": "q"}},
                              {"display_name": "W", "extensionAttribute15": None}])
        assert plan["entries"][0]["problems"] == ["conflicts with entry 2 (extensionAttribute15)"]
        assert "extensionAttribute15=null" in plan["entries"][1]["problems"][0]

    def test_entries_that_agree_or_ask_different_fields_of_one_device_are_no_conflict(self):
        plan = baseline_plan([{"serial_number": "A", "device_status": "trusted"},
                              {"serial_number": "A", "device_ownership": "company"},
                              {"serial_number": "A", "device_status": "Trusted"}])
        assert [e["problems"] for e in plan["entries"]] == [[], [], []]

    def test_the_same_value_under_two_identifier_fields_is_two_devices(self):
        plan = baseline_plan([{"serial_number": "A", "device_status": "trusted"},
                              {"device_name": "A", "device_status": "untrusted"}])
        assert [e["problems"] for e in plan["entries"]] == [[], []]

    def test_cells_beyond_the_header_are_refused_naming_the_line_and_the_cells(self):
        extra = {"line": 4, "columns": 2, "cells": ["company", "x"]}
        assert problems({"serial_number": "A", "device_status": "trusted", "_extra_cells": extra}) == [
            'CSV line 4: 2 cell(s) beyond the header\'s 2 column(s): ["company", "x"]']


class TestBadInput:
    @pytest.mark.parametrize("value, shown", [({"devices": []}, 'a dict: {"devices": []}'), ("a,b", 'a str: "a,b"'),
                                              (None, "null")], ids=repr)
    def test_anything_but_a_list_fails_naming_it(self, value, shown):
        with pytest.raises(AnsibleFilterError) as caught:
            baseline_plan(value)
        assert str(caught.value) == "baseline_plan: expected a list of baseline entries, not " + shown


class TestTables:
    """The fields come from the modules' tables in module_utils, and the audit role passes them all on."""

    def test_graph_fields_are_properties_the_module_sets(self):
        assert set(baseline.MSGRAPH_DESIRED) <= set(V1_PROPERTIES)
        assert set(baseline.MSGRAPH_DESIRED) == set(V1_PROPERTIES) - {"new_display_name"}

    def test_extension_attribute_columns_are_the_module_table(self):
        assert set(EXTENSION_ATTRIBUTES) <= baseline.KNOWN_FIELDS
        assert problems({"id": "X", EXTENSION_ATTRIBUTES[-1]: "x"}) == []

    @pytest.mark.parametrize("module, identifiers, desired", [
        ("fleetguard.devices.feishu_device_record", baseline.FEISHU_IDENTIFIERS, tuple(baseline.FEISHU_DESIRED)),
        ("fleetguard.devices.msgraph_device", baseline.MSGRAPH_IDENTIFIERS, baseline.MSGRAPH_DESIRED),
    ])
    def test_the_audit_role_passes_every_field_a_plan_can_hold_to_the_module(self, module, identifiers, desired):
        with open(os.path.join(COLLECTION_ROOT, "roles", "audit", "tasks", "main.yml")) as tasks_file:
            tasks = yaml.safe_load(tasks_file)
        calls = [task[module] for block in tasks for task in block.get("block", [block]) if module in task]
        assert len(calls) == 2  # a call per group, then per entry of a group whose call failed
        for options in calls:
            assert set(options) == set(identifiers) | set(desired)
