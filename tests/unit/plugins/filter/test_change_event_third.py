"""change_event, attacked a third time: a long `changed` list, option values that are no list."""

import time

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.fleetguard.devices.plugins.filter.change_event import change_event
from ansible_collections.fleetguard.devices.plugins.module_utils.device_changes import change_event as source_event

GUID = "0f2c7d1e-5b1a-4c3e-9a7b-3d2e1f0a9b8c"


def graph_eda(**change):
    event = source_event("msgraph", "updated", GUID, {"displayName": "PC-1", "accountEnabled": True},
                         changed=["accountEnabled"], previous={"accountEnabled": False},
                         observed_at="2026-12-07T09:05:31Z")
    event["fleetguard"].update(change)
    return {"event": event}


def test_a_changed_list_of_100000_names_is_checked_in_linear_time():
    names = ["p%d" % position for position in range(100000)]
    started = time.monotonic()
    change = change_event(graph_eda(changed=names), ["msgraph"])
    assert time.monotonic() - started < 5
    assert change["changed"] == names


def test_a_changed_list_of_one_name_100000_times_is_refused_in_linear_time():
    started = time.monotonic()
    with pytest.raises(AnsibleFilterError, match="changed names accountEnabled more than once"):
        change_event(graph_eda(changed=["accountEnabled"] * 100000), ["msgraph"])
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("fields", ["", False, 0, {}], ids=["empty-str", "false", "zero", "dict"])
def test_fields_that_are_no_list_are_refused_even_when_empty(fields):
    with pytest.raises(AnsibleFilterError, match="option fields must be a list of names"):
        change_event(graph_eda(), ["msgraph"], fields=fields)


def test_fields_none_or_an_empty_list_ask_for_no_field():
    assert change_event(graph_eda(), ["msgraph"], fields=None)["device"] == {}
    assert change_event(graph_eda(), ["msgraph"], fields=[])["device"] == {}


def test_a_field_named_like_a_key_of_the_change_stays_in_device():
    change = change_event(graph_eda(device={"id": 5, "directory": "feishu"}), ["msgraph"], fields=["id", "directory"])
    assert change["id"] == GUID and change["directory"] == "msgraph"
    assert change["device"] == {"id": 5, "directory": "feishu"}
