"""change_event: the change a rulebook hands a playbook, checked and reduced to the keys the sources set themselves
(the playbooks of Event-Driven Ansible read nothing else of an event: a device's user chooses its name)."""

import copy

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.fleetguard.devices.plugins.filter.change_event import change_event
from ansible_collections.fleetguard.devices.plugins.module_utils.device_changes import change_event as source_event

GUID = "0f2c7d1e-5b1a-4c3e-9a7b-3d2e1f0a9b8c"
TEMPLATE = "{{ lookup('pipe', 'id') }}"


def graph_eda(**change):
    event = source_event("msgraph", "updated", GUID,
                         {"displayName": TEMPLATE, "accountEnabled": True, "isCompliant": False,
                          "extensionAttributes": {"extensionAttribute15": "quarantine:" + TEMPLATE}},
                         changed=["accountEnabled", "isCompliant"], previous={"accountEnabled": False, "isCompliant": True},
                         observed_at="2026-12-07T09:05:31Z")
    event["fleetguard"].update(change)
    return {"event": event}


def feishu_eda(**change):
    event = source_event("feishu", "updated", "7400000000000000001", {"device_name": TEMPLATE, "device_status": "trusted"},
                         changed=["device_status"], previous={"device_status": "untrusted"},
                         observed_at="2026-12-07T09:05:31Z")
    event["fleetguard"].update(change)
    return {"event": event}


def refusal(ansible_eda, *args, **kwargs):
    with pytest.raises(AnsibleFilterError) as caught:
        change_event(ansible_eda, *args, **kwargs)
    return str(caught.value)


def test_only_the_keys_the_sources_set_come_back_and_no_name_or_tag():
    change = change_event(graph_eda(), ["msgraph", "feishu"], fields=["accountEnabled", "device_status"])
    assert change == {"directory": "msgraph", "change": "updated", "id": GUID, "changed": ["accountEnabled", "isCompliant"],
                      "observed_at": "2026-12-07T09:05:31Z", "device": {"accountEnabled": True},
                      "previous": {"accountEnabled": False}}
    assert TEMPLATE not in repr(change)


def test_a_feishu_status_text_is_a_field_a_playbook_may_read():
    change = change_event(feishu_eda(), ["msgraph", "feishu"], fields=["accountEnabled", "device_status"])
    assert change["device"] == {"device_status": "trusted"} and change["previous"] == {"device_status": "untrusted"}


def test_the_event_is_not_changed():
    eda = graph_eda()
    before = copy.deepcopy(eda)
    change_event(eda, ["msgraph"], fields=["accountEnabled"])
    assert eda == before


@pytest.mark.parametrize("eda", [None, {}, {"event": None}, {"event": {"payload": {}}}, {"event": {"fleetguard": "x"}},
                                 "ansible_eda"])
def test_a_run_without_a_change_event_is_refused(eda):
    message = refusal(eda, ["msgraph"], playbook="keep_quarantined")
    assert message.startswith("keep_quarantined: nothing was read or written, since this run has no"
                              " ansible_eda.event.fleetguard")


@pytest.mark.parametrize("change, named", [
    (dict(directory="okta"), 'directory "okta" is not msgraph or feishu'),
    (dict(change="resync", id=None), 'change "resync" is not added, updated or removed; id null is not'),
    (dict(id="../../users/" + GUID), 'id "../../users/%s" is not a Graph object id (a GUID)' % GUID),
    (dict(id=GUID + "\n"), "is not a Graph object id"),
    (dict(id=GUID + "/owners"), "is not a Graph object id"),
    (dict(id=42), "id 42 is not a Graph object id"),
    (dict(id={"a": TEMPLATE}), "id a dict is not a Graph object id"),
    (dict(device=None), "device is null, not an object"),
    (dict(previous=["accountEnabled"]), "previous is a list, not an object"),
    (dict(changed="accountEnabled"), "changed is a str, not a list of property names"),
    (dict(changed=[TEMPLATE]), "changed holds something other than property names"),
    (dict(observed_at="2026-13-45T99:00:00Z"), 'observed_at "2026-13-45T99:00:00Z" is not a UTC time'),
    (dict(observed_at="2026-02-30T09:05:31Z"), 'observed_at "2026-02-30T09:05:31Z" is not a UTC time'),
    (dict(observed_at="2026-12-07T09:05:31Z\n"), "is not a UTC time"),
    (dict(observed_at=None), "observed_at null is not a UTC time"),
])
def test_an_event_of_another_shape_is_refused_naming_the_problem(change, named):
    message = refusal(graph_eda(**change), ["msgraph", "feishu"])
    assert named in message
    assert TEMPLATE not in message


def test_every_problem_is_named_at_once():
    message = refusal(graph_eda(directory="okta", id=7, observed_at="now", changed=None), ["msgraph"])
    for named in ('directory "okta" is not msgraph', "id 7", 'observed_at "now"', "changed is null"):
        assert named in message


def test_a_feishu_id_must_be_digits():
    assert "is not a Feishu device record id (digits)" in refusal(feishu_eda(id="7400/../1"), ["feishu"])
    assert change_event(feishu_eda(), ["feishu"])["id"] == "7400000000000000001"


def test_a_feishu_event_to_a_graph_playbook_is_refused():
    assert 'directory "feishu" is not msgraph' in refusal(feishu_eda(), ["msgraph"], changes=["updated"])


@pytest.mark.parametrize("value", [TEMPLATE, {"nested": True}, ["x"], "x" * 65])
def test_a_field_that_is_no_flag_or_status_is_refused_without_showing_it(value):
    message = refusal(graph_eda(device={"accountEnabled": value}), ["msgraph"], fields=["accountEnabled"])
    assert "device.accountEnabled is a" in message and TEMPLATE not in message


def test_a_field_previous_does_not_hold_is_left_out():
    change = change_event(graph_eda(previous={}), ["msgraph"], fields=["accountEnabled", "isCompliant"])
    assert change["previous"] == {} and change["device"] == {"accountEnabled": True, "isCompliant": False}


def test_removed_and_added_are_device_changes_resync_is_not():
    assert change_event(graph_eda(change="removed"), ["msgraph"])["change"] == "removed"
    assert "is not updated" in refusal(graph_eda(change="added"), ["msgraph"], changes=["updated"])
    assert "is not added, updated or removed" in refusal(graph_eda(change="resync"), ["msgraph"])


@pytest.mark.parametrize("directories, changes, fields, named", [
    ([], None, None, "directories must name msgraph and/or feishu"),
    (["okta"], None, None, "not okta"),
    ("msgraph", None, None, "directories must be a list of names, not a str"),
    (["msgraph"], "updated", None, "changes must be a list of names"),
    (["msgraph"], None, [1], "fields must be a list of names"),
])
def test_bad_options_are_refused(directories, changes, fields, named):
    assert named in refusal(graph_eda(), directories, changes=changes, fields=fields)
