"""Desired-vs-current comparison: only the fields the user set are managed."""

import pytest

from ansible_collections.fleetguard.devices.plugins.module_utils.comparison import (
    apply_changes,
    changed_fields,
    diff_entry,
    managed_view,
)

EXT = "extensionAttributes"


@pytest.mark.parametrize("current, desired, expected", [
    ({"device_status": 1}, {"device_status": 1}, {}),
    ({"device_status": 1}, {"device_status": 2}, {"device_status": 2}),
    ({"device_status": 1, "device_ownership": 0}, {"device_status": 1}, {}),
    ({}, {"device_status": 0}, {"device_status": 0}),
    ({"accountEnabled": True}, {"accountEnabled": False}, {"accountEnabled": False}),
    ({"accountEnabled": None}, {"accountEnabled": False}, {"accountEnabled": False}),
    ({EXT: {"extensionAttribute1": "a", "extensionAttribute2": "b"}}, {EXT: {"extensionAttribute1": "a"}}, {}),
    ({EXT: {"extensionAttribute1": "a"}}, {EXT: {"extensionAttribute1": None}}, {EXT: {"extensionAttribute1": None}}),
    ({EXT: {"extensionAttribute1": None}}, {EXT: {"extensionAttribute1": None}}, {}),
    ({EXT: {}}, {EXT: {"extensionAttribute15": None}}, {}),
    ({}, {EXT: {"extensionAttribute15": None}}, {}),
    ({EXT: None}, {EXT: {"extensionAttribute15": "q"}}, {EXT: {"extensionAttribute15": "q"}}),
    (None, {"displayName": "x"}, {"displayName": "x"}),
])
def test_changed_fields_compares_only_what_the_user_set(current, desired, expected):
    assert changed_fields(current, desired) == expected


def test_apply_changes_merges_nested_keys_and_leaves_the_input_alone():
    current = {"id": "1", EXT: {"extensionAttribute1": "a", "extensionAttribute2": "b"}, "accountEnabled": True}
    predicted = apply_changes(current, {EXT: {"extensionAttribute2": None}, "accountEnabled": False})
    assert predicted == {"id": "1", EXT: {"extensionAttribute1": "a", "extensionAttribute2": None},
                         "accountEnabled": False}
    assert current[EXT]["extensionAttribute2"] == "b"
    assert current["accountEnabled"] is True


def test_managed_view_projects_on_the_desired_keys_only():
    record = {"device_status": 2, "device_ownership": 1, "version": "3", EXT: {"extensionAttribute1": "x"}}
    assert managed_view(record, {"device_status": 0}) == {"device_status": 2}
    assert managed_view(record, {EXT: {"extensionAttribute1": None, "extensionAttribute9": "y"}}) == {
        EXT: {"extensionAttribute1": "x", "extensionAttribute9": None}}


def test_diff_entry_has_the_shape_ansible_callbacks_render():
    entry = diff_entry({"a": 1}, {"a": 2}, "device 1")
    assert entry == {"before": {"a": 1}, "after": {"a": 2}, "before_header": "device 1", "after_header": "device 1"}
    assert diff_entry({}, {}, "x", "absent")["after_header"] == "absent"


def test_values_the_api_folds_together_are_no_change():
    def fold(value):
        return None if value == "" else value

    current = {"extensionAttributes": {"extensionAttribute1": None, "extensionAttribute2": "x"}}
    desired = {"extensionAttributes": {"extensionAttribute1": "", "extensionAttribute2": ""}}
    assert changed_fields(current, desired, fold) == {"extensionAttributes": {"extensionAttribute2": ""}}
    assert changed_fields(current, desired) == desired
