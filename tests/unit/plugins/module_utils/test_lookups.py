"""lookups: which identity option a task gave, whether each value named exactly one object, and the objects to act on."""

import pytest

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import (
    SHOWN_MAX,
    FleetguardError,
    InputError,
    LookupFailure,
    shown,
)
from ansible_collections.fleetguard.devices.plugins.module_utils.lookups import (
    check_matches,
    identity,
    unique_targets,
)

FIELDS = ("id", "device_id", "display_name")


def dev(object_id, name=None):
    return {"id": object_id, "displayName": name or "FG-%s" % object_id}


def lookup_failure(*args, **kwargs):
    with pytest.raises(LookupFailure) as caught:
        check_matches(*args, **kwargs)
    return caught.value


# --- identity --------------------------------------------------------------------------------------------


def test_identity_is_the_option_the_task_gave_with_its_values_in_order():
    params = {"id": None, "device_id": ["d-2", "d-1", "d-2"], "display_name": None, "state": "present"}

    assert identity(params, FIELDS) == ("device_id", ["d-2", "d-1", "d-2"])


def test_identity_drops_empty_strings_and_nones():
    params = {"id": None, "device_id": None, "display_name": ["", "FG-1", None, "", "FG-2"]}

    assert identity(params, FIELDS) == ("display_name", ["FG-1", "FG-2"])


def test_identity_keeps_values_that_only_look_empty():
    params = {"id": [" ", "0"]}

    assert identity(params, FIELDS) == ("id", [" ", "0"])


def test_identity_takes_the_fields_in_the_order_given():
    params = {"id": ["a"], "display_name": ["FG-A"]}

    assert identity(params, ("display_name", "id")) == ("display_name", ["FG-A"])


@pytest.mark.parametrize("given", [[], [""], ["", None, ""]], ids=["empty-list", "empty-string", "only-empties"])
def test_identity_refuses_an_empty_list_naming_the_field(given):
    params = {"id": None, "device_id": given, "display_name": None}

    with pytest.raises(InputError) as caught:
        identity(params, FIELDS)

    assert str(caught.value) == "device_id is empty: give at least one value"
    assert isinstance(caught.value, FleetguardError)


# --- check_matches ---------------------------------------------------------------------------------------


def test_every_value_matching_one_object_passes():
    matches = {"FG-1": [dev("1")], "FG-2": [dev("2")]}

    assert check_matches("display_name", ["FG-1", "FG-2"], matches, "present", "id", "device") is None


def test_a_missing_value_fails_with_state_present():
    failure = lookup_failure("display_name", ["FG-1", "FG-9"], {"FG-1": [dev("1")], "FG-9": []}, "present", "id",
                             "device")

    assert str(failure) == "nothing was changed: display_name='FG-9' matches no device"
    assert failure.problems == [{"field": "display_name", "value": "FG-9", "reason": "missing", "candidates": []}]


def test_a_value_the_matches_do_not_mention_is_missing():
    failure = lookup_failure("id", ["a"], {}, "present", "id", "device")

    assert failure.problems[0]["reason"] == "missing"


def test_a_missing_value_with_state_absent_is_already_absent():
    assert check_matches("display_name", ["FG-1", "FG-9"], {"FG-1": [dev("1")], "FG-9": []}, "absent", "id",
                         "device") is None


@pytest.mark.parametrize("state", ["present", "absent"])
def test_an_ambiguous_value_fails_listing_the_candidates_whatever_the_state(state):
    matches = {"FG-1": [dev("1a", "FG-1"), dev("1b", "FG-1"), dev("1c", "FG-1")]}

    failure = lookup_failure("display_name", ["FG-1"], matches, state, "id", "device")

    assert str(failure) == "nothing was changed: display_name='FG-1' matches 3 devices (1a, 1b, 1c)"
    assert failure.problems == [{"field": "display_name", "value": "FG-1", "reason": "ambiguous",
                                 "candidates": ["1a", "1b", "1c"]}]


def test_candidates_are_named_by_the_id_key_as_strings():
    matches = {"SN1": [{"device_record_id": 71, "serial_number": "SN1"}, {"device_record_id": 72,
                                                                          "serial_number": "SN1"}]}

    failure = lookup_failure("serial_number", ["SN1"], matches, "present", "device_record_id", "device record")

    assert failure.problems[0]["candidates"] == ["71", "72"]
    assert "matches 2 device records (71, 72)" in str(failure)


def test_a_missing_value_with_a_near_match_suggests_it():
    failure = lookup_failure("display_name", ["fg-1"], {"fg-1": []}, "present", "id", "device",
                             hints={"fg-1": ["FG-1"]})

    assert str(failure) == "nothing was changed: display_name='fg-1' matches no device (did you mean FG-1?)"


def test_several_near_matches_are_all_suggested():
    failure = lookup_failure("display_name", ["fg-1"], {"fg-1": []}, "present", "id", "device",
                             hints={"fg-1": ["FG-1", "Fg-1"]})

    assert str(failure).endswith("matches no device (did you mean FG-1 or Fg-1?)")


@pytest.mark.parametrize("hints", [None, {}, {"fg-1": []}, {"other": ["FG-1"]}],
                         ids=["no-hints", "empty-hints", "no-near-match", "hint-for-another-value"])
def test_no_suggestion_without_a_near_match_for_that_value(hints):
    failure = lookup_failure("display_name", ["fg-1"], {"fg-1": []}, "present", "id", "device", hints=hints)

    assert "did you mean" not in str(failure)


def test_the_message_names_every_failing_value_in_input_order():
    matches = {"FG-9": [], "FG-1": [dev("1")], "FG-2": [dev("2a", "FG-2"), dev("2b", "FG-2")], "FG-8": []}

    failure = lookup_failure("display_name", ["FG-9", "FG-1", "FG-2", "FG-8"], matches, "present", "id", "device",
                             hints={"FG-8": ["fg-8"]})

    assert str(failure) == (
        "nothing was changed: display_name='FG-9' matches no device; display_name='FG-2' matches 2 devices (2a, 2b);"
        " display_name='FG-8' matches no device (did you mean fg-8?)")
    assert [(p["value"], p["reason"]) for p in failure.problems] == [("FG-9", "missing"), ("FG-2", "ambiguous"),
                                                                     ("FG-8", "missing")]


def test_a_long_value_is_cut_in_the_message_as_errors_shown_cuts_it():
    long_value = "FG-" + "x" * 500

    failure = lookup_failure("display_name", [long_value], {long_value: []}, "present", "id", "device")

    message = str(failure)
    assert message == "nothing was changed: display_name=%s matches no device" % shown(long_value)
    assert long_value not in message
    assert "(503 characters)" in message
    assert len(message) < SHOWN_MAX + 100
    # The problem itself keeps the whole value, for a caller that needs it.
    assert failure.problems[0]["value"] == long_value


def test_a_long_ambiguous_value_is_cut_too():
    long_value = "y" * 300
    matches = {long_value: [dev("1"), dev("2")]}

    message = str(lookup_failure("display_name", [long_value], matches, "absent", "id", "device"))

    assert message == "nothing was changed: display_name=%s matches 2 devices (1, 2)" % shown(long_value)
    assert long_value not in message


# --- unique_targets -------------------------------------------------------------------------------------


def test_targets_are_the_matched_objects_in_first_seen_order():
    a, b, c = dev("a"), dev("b"), dev("c")
    matches = {"x": [c], "y": [a, b], "z": []}

    assert unique_targets(["x", "z", "y"], matches, "id") == [c, a, b]


def test_an_object_named_by_several_values_is_a_target_once():
    a, b = dev("a"), dev("b")
    # The same device read twice (once per lookup) is equal but not the same dict: the id decides.
    matches = {"FG-a": [a], "a": [dict(a)], "FG-b": [b], "again": [b, a]}

    targets = unique_targets(["FG-a", "FG-b", "a", "again"], matches, "id")

    assert targets == [a, b]
    assert targets[0] is a


def test_targets_follow_the_values_not_the_matches_order():
    a, b = dev("a"), dev("b")
    matches = {"first": [a], "second": [b]}

    assert unique_targets(["second", "first"], matches, "id") == [b, a]


def test_no_values_no_targets():
    assert unique_targets([], {}, "id") == []
