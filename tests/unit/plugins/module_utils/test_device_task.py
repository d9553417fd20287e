"""device_task.run_device_task: resolve -> check matches -> converge | remove -> report, whatever the API.

The directory is a small fake with the face docs/architecture.md gives every directory (ID_KEY, NOUN, ABSENT_VIEW,
hints, resolve, converge, remove, label, view) that records each call; the module is a real AnsibleModule built
from the task's arguments with patch_module_args.
"""

import pytest

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from ansible_collections.fleetguard.devices.plugins.module_utils.device_task import run_device_task
from ansible_collections.fleetguard.devices.plugins.module_utils.errors import InputError, LookupFailure
from ansible_collections.fleetguard.devices.plugins.module_utils.outcomes import Change

IDENTITY_FIELDS = ("id", "display_name")
ARGUMENT_SPEC = dict(
    id=dict(type="list", elements="str"),
    display_name=dict(type="list", elements="str"),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    status=dict(type="str", choices=["trusted", "untrusted"]),
    owner=dict(type="str"),
)
DESIRED_FIELDS = ("status", "owner")


def build_module(args, check_mode=False, diff=False):
    """An AnsibleModule as Ansible would build it for a task with `args` (and --check / --diff)."""
    args = dict(args)
    if check_mode:
        args["_ansible_check_mode"] = True
    if diff:
        args["_ansible_diff"] = True
    with patch_module_args(args):
        return AnsibleModule(argument_spec=ARGUMENT_SPEC, mutually_exclusive=[IDENTITY_FIELDS],
                             required_one_of=[IDENTITY_FIELDS], supports_check_mode=True)


def desired_of(module):
    """What a module's run() hands over: the properties the task set."""
    return dict((name, module.params[name]) for name in DESIRED_FIELDS if module.params[name] is not None)


class FakeDirectory:
    """A directory of devices held in memory. Records every call; writes only outside check mode."""

    ID_KEY = "id"
    NOUN = "device"
    ABSENT_VIEW = {"displayName": None, "status": None}

    def __init__(self, devices, hints=None):
        self.devices = dict((d["id"], dict(d)) for d in devices)
        self.hints = hints or {}
        self.calls = []

    def resolve(self, field, values):
        self.calls.append(("resolve", field, list(values)))
        key = "displayName" if field == "display_name" else field
        return dict((value, [dict(d) for d in self.devices.values() if d[key] == value]) for value in values), self.hints

    def converge(self, objects, desired, check_mode):
        self.calls.append(("converge", [o["id"] for o in objects], dict(desired), check_mode))
        changes = {}
        for current in objects:
            after = dict(current, **desired)
            if not check_mode:
                self.devices[current["id"]] = after
            changes[current["id"]] = Change(current, after, changed=after != current)
        return changes

    def remove(self, objects, check_mode):
        self.calls.append(("remove", [o["id"] for o in objects], check_mode))
        changes = {}
        for current in objects:
            if not check_mode:
                del self.devices[current["id"]]
            changes[current["id"]] = Change(current, {}, changed=True)
        return changes

    @staticmethod
    def label(device):
        return "device %s (%s)" % (device["id"], device["displayName"])

    @staticmethod
    def view(device, desired):
        return dict((key, device.get(key)) for key in desired)


def fleet():
    return FakeDirectory([
        {"id": "1", "displayName": "FG-1", "status": "trusted", "owner": "ann"},
        {"id": "2", "displayName": "FG-2", "status": "untrusted", "owner": "bob"},
        {"id": "3", "displayName": "FG-3", "status": "trusted", "owner": "cat"},
        {"id": "4a", "displayName": "FG-TWIN", "status": "trusted", "owner": "dan"},
        {"id": "4b", "displayName": "FG-TWIN", "status": "trusted", "owner": "eve"},
    ])


def run(module, directory):
    return run_device_task(module, directory, IDENTITY_FIELDS, desired_of(module), "devices", "changed_devices")


# --- state=present ---------------------------------------------------------------------------------------


def test_present_resolves_every_value_then_converges_the_targets_once():
    directory = fleet()
    module = build_module(dict(display_name=["FG-3", "", "FG-1", "FG-2"], status="untrusted"))

    result = run(module, directory)

    assert directory.calls == [
        ("resolve", "display_name", ["FG-3", "FG-1", "FG-2"]),
        ("converge", ["3", "1", "2"], {"status": "untrusted"}, False),
    ]
    assert [(o["identifier"], o["id"], o["outcome"]) for o in result["outcomes"]] == [
        ("FG-3", "3", "changed"), ("FG-1", "1", "changed"), ("FG-2", "2", "unchanged")]
    assert result["changed"] is True
    assert result["failed"] is False
    assert result["changed_devices"] == ["3", "1"]
    assert [d["status"] for d in result["devices"]] == ["untrusted"] * 3
    assert directory.devices["1"]["status"] == "untrusted"
    assert "diff" not in result


def test_a_device_named_twice_is_converged_once():
    directory = fleet()
    module = build_module(dict(id=["1", "1"], owner="zoe"))

    result = run(module, directory)

    assert directory.calls[1] == ("converge", ["1"], {"owner": "zoe"}, False)
    assert result["changed_devices"] == ["1"]
    assert [o["outcome"] for o in result["outcomes"]] == ["changed", "changed"]


def test_check_mode_converges_with_check_mode_and_writes_nothing():
    directory = fleet()
    before = dict((k, dict(v)) for k, v in directory.devices.items())
    module = build_module(dict(id=["1", "2"], status="untrusted"), check_mode=True)

    result = run(module, directory)

    assert directory.calls == [("resolve", "id", ["1", "2"]), ("converge", ["1", "2"], {"status": "untrusted"}, True)]
    assert directory.devices == before
    # The result predicts what a real run would do.
    assert result["changed"] is True
    assert result["changed_devices"] == ["1"]
    assert result["devices"][0]["status"] == "untrusted"


# --- state=absent ----------------------------------------------------------------------------------------


def test_absent_removes_the_targets_and_never_converges():
    directory = fleet()
    module = build_module(dict(id=["2", "1"], state="absent"))

    result = run(module, directory)

    assert directory.calls == [("resolve", "id", ["2", "1"]), ("remove", ["2", "1"], False)]
    assert sorted(directory.devices) == ["3", "4a", "4b"]
    assert result["changed_devices"] == ["2", "1"]
    assert result["devices"] == [{}, {}]


def test_absent_in_check_mode_removes_with_check_mode():
    directory = fleet()
    module = build_module(dict(id=["3"], state="absent"), check_mode=True)

    result = run(module, directory)

    assert directory.calls[-1] == ("remove", ["3"], True)
    assert "3" in directory.devices
    assert result["changed"] is True


def test_absent_with_a_value_that_matches_nothing_removes_the_rest():
    directory = fleet()
    module = build_module(dict(display_name=["FG-GONE", "FG-2"], state="absent"))

    result = run(module, directory)

    assert directory.calls[-1] == ("remove", ["2"], False)
    assert result["failed"] is False
    assert result["outcomes"][0] == {"identifier": "FG-GONE", "id": None, "outcome": "unchanged"}
    assert result["summary"]["changed"] == 1 and result["summary"]["unchanged"] == 1


@pytest.mark.parametrize("args, named", [
    (dict(status="untrusted"), "(status)"),
    (dict(status="trusted", owner="zoe"), "(owner, status)"),
], ids=["one-property", "two-properties"])
def test_absent_with_properties_to_set_is_refused_before_any_request(args, named):
    directory = fleet()
    module = build_module(dict(id=["1"], state="absent", **args))

    with pytest.raises(InputError) as caught:
        run(module, directory)

    assert str(caught.value) == ("state=absent deletes the devices; it cannot be combined with the properties to set "
                                 + named)
    assert directory.calls == []
    assert "1" in directory.devices


# --- lookups ---------------------------------------------------------------------------------------------


def test_a_missing_value_fails_before_converge():
    directory = fleet()
    module = build_module(dict(display_name=["FG-1", "FG-404"], status="untrusted"))

    with pytest.raises(LookupFailure) as caught:
        run(module, directory)

    assert str(caught.value) == "nothing was changed: display_name='FG-404' matches no device"
    assert directory.calls == [("resolve", "display_name", ["FG-1", "FG-404"])]
    assert directory.devices["1"]["status"] == "trusted"


@pytest.mark.parametrize("state, args", [("present", dict(status="untrusted")), ("absent", dict())])
def test_an_ambiguous_value_fails_before_any_write(state, args):
    directory = fleet()
    module = build_module(dict(display_name=["FG-TWIN"], state=state, **args))

    with pytest.raises(LookupFailure) as caught:
        run(module, directory)

    assert "display_name='FG-TWIN' matches 2 devices (4a, 4b)" in str(caught.value)
    assert [call[0] for call in directory.calls] == ["resolve"]
    assert sorted(directory.devices) == ["1", "2", "3", "4a", "4b"]


def test_a_missing_value_is_suggested_the_directorys_near_matches():
    directory = fleet()
    directory.hints = {"fg-1": ["FG-1"]}
    module = build_module(dict(display_name=["fg-1"], status="untrusted"))

    with pytest.raises(LookupFailure) as caught:
        run(module, directory)

    assert str(caught.value).endswith("matches no device (did you mean FG-1?)")


def test_an_identity_list_of_only_empty_strings_is_refused_before_resolve():
    directory = fleet()
    module = build_module(dict(id=["", ""], status="untrusted"))

    with pytest.raises(InputError) as caught:
        run(module, directory)

    assert str(caught.value) == "id is empty: give at least one value"
    assert directory.calls == []


# --- --diff ---------------------------------------------------------------------------------------------


def test_diff_shows_the_managed_fields_before_and_after_of_each_changed_device():
    directory = fleet()
    module = build_module(dict(id=["1", "2", "3"], status="untrusted"), diff=True)

    result = run(module, directory)

    # Device 2 was already untrusted: no entry for it.
    assert result["diff"] == [
        {"before": {"status": "trusted"}, "after": {"status": "untrusted"},
         "before_header": "device 1 (FG-1)", "after_header": "device 1 (FG-1)"},
        {"before": {"status": "trusted"}, "after": {"status": "untrusted"},
         "before_header": "device 3 (FG-3)", "after_header": "device 3 (FG-3)"},
    ]


def test_diff_in_check_mode_shows_the_predicted_after():
    directory = fleet()
    module = build_module(dict(display_name=["FG-2"], status="trusted", owner="zoe"), check_mode=True, diff=True)

    result = run(module, directory)

    assert result["diff"] == [{"before": {"status": "untrusted", "owner": "bob"},
                               "after": {"status": "trusted", "owner": "zoe"},
                               "before_header": "device 2 (FG-2)", "after_header": "device 2 (FG-2)"}]
    assert directory.devices["2"]["owner"] == "bob"


def test_diff_of_a_removal_shows_the_absent_view_going_to_nothing():
    directory = fleet()
    module = build_module(dict(id=["3"], state="absent"), diff=True)

    result = run(module, directory)

    assert result["diff"] == [{"before": {"displayName": "FG-3", "status": "trusted"}, "after": {},
                               "before_header": "device 3 (FG-3)", "after_header": "absent"}]


def test_no_diff_is_reported_without_diff_mode():
    directory = fleet()
    module = build_module(dict(id=["3"], state="absent"))

    assert "diff" not in run(module, directory)


def test_nothing_to_change_gives_an_empty_diff():
    directory = fleet()
    module = build_module(dict(id=["2"], status="untrusted"), diff=True)

    result = run(module, directory)

    assert result["changed"] is False
    assert result["diff"] == []
