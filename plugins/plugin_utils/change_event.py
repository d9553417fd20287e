# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""The change a rulebook hands a playbook (ansible_eda.event.fleetguard, built by module_utils/device_changes.py),
checked and reduced to what the sources set themselves.

ansible-rulebook's run_playbook hands the event over as `-e @file`, which ansible-core takes for trusted templates:
every string in it is rendered when it is read. A device name is chosen by the device's user, so a name such as
"{{ lookup('pipe', ...) }}" would run on the controller. Only the keys read here are ever rendered: the directory,
the change, the id, the names of the changed properties, when it was seen, and the device fields asked for. Each of
them is refused unless it has the form the sources give it, so what comes back holds no template.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re

from collections.abc import Mapping

from ansible_collections.fleetguard.devices.plugins.module_utils.device_changes import CHANGES
from ansible_collections.fleetguard.devices.plugins.module_utils.errors import shown_json
from ansible_collections.fleetguard.devices.plugins.module_utils.feishu_client import DEVICE_RECORD_ID_PATTERN
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_odata import GUID
from ansible_collections.fleetguard.devices.plugins.plugin_utils.identifiers import kind

DIRECTORY_IDS = {"msgraph": (GUID, "a Graph object id (a GUID)"),
                 "feishu": (DEVICE_RECORD_ID_PATTERN, "a Feishu device record id (digits)")}
OBSERVED_AT_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# A property name as the sources list it in `changed`, and a field value a playbook may read (a status, a flag).
PROPERTY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}\Z")
ENUM_TEXT = re.compile(r"[A-Za-z0-9_.:-]{0,64}\Z")
# The resync event carries no device: it asks for a full read, which these playbooks do not do.
DEVICE_CHANGES = tuple(change for change in CHANGES if change != "resync")


class EventProblems(Exception):
    """What is wrong with an event, one sentence each."""

    def __init__(self, problems):
        super(EventProblems, self).__init__("; ".join(problems))
        self.problems = problems


def _one_of(values):
    values = list(values)
    return values[0] if len(values) == 1 else "%s or %s" % (", ".join(values[:-1]), values[-1])


def _scalar(value):
    return value is None or isinstance(value, (bool, int, float)) or isinstance(value, str) and bool(ENUM_TEXT.match(value))


def _fields(mapping, fields, label, problems):
    """The fields asked for that `mapping` holds; a value that is no flag, number or short enum text is refused."""
    picked = {}
    for field in fields:
        if field in mapping:
            value = mapping[field]
            if _scalar(value):
                picked[field] = value
            else:
                problems.append("%s.%s is %s, not a flag, a number or a status" % (label, field, kind(value)))
    return picked


def _identity(change, directories, changes, problems):
    directory, action, object_id = change.get("directory"), change.get("change"), change.get("id")
    if directory not in directories:
        problems.append("directory %s is not %s" % (shown_json(directory) if _scalar(directory) else kind(directory),
                                                    _one_of(directories)))
    if action not in changes:
        problems.append("change %s is not %s" % (shown_json(action) if _scalar(action) else kind(action), _one_of(changes)))
    pattern, described = DIRECTORY_IDS.get(directory, DIRECTORY_IDS[directories[0]])
    if not isinstance(object_id, str) or not pattern.match(object_id) or pattern.match(object_id).end() != len(object_id):
        shown = shown_json(object_id) if isinstance(object_id, (str, int, float, type(None))) else kind(object_id)
        problems.append("id %s is not %s" % (shown, described))


def _observed_at(change, problems):
    observed_at = change.get("observed_at")
    try:
        if not isinstance(observed_at, str) or len(observed_at) != 20:
            raise ValueError(observed_at)
        datetime.datetime.strptime(observed_at, OBSERVED_AT_FORMAT)
    except ValueError:
        shown = shown_json(observed_at) if isinstance(observed_at, (str, int, float, type(None))) else kind(observed_at)
        problems.append("observed_at %s is not a UTC time like 2026-12-07T09:05:31Z" % shown)
    return observed_at


def checked_change(ansible_eda, directories, changes=DEVICE_CHANGES, fields=()):
    """The change of `ansible_eda` (what a rulebook hands a playbook) with only the keys the sources set themselves:
    directory, change, id, changed, observed_at, and of `device` and `previous` the `fields` asked for that they hold.
    Raises EventProblems naming every problem."""
    event = ansible_eda.get("event") if isinstance(ansible_eda, Mapping) else None
    change = event.get("fleetguard") if isinstance(event, Mapping) else None
    if not isinstance(change, Mapping):
        raise EventProblems(["this run has no ansible_eda.event.fleetguard (a rulebook hands the event of"
                             " msgraph_device_changes or feishu_device_record_changes over as ansible_eda.event)"])
    problems = []
    _identity(change, list(directories), list(changes), problems)
    device, previous, changed = change.get("device"), change.get("previous"), change.get("changed")
    if not isinstance(device, Mapping):
        problems.append("device is %s, not an object" % kind(device))
    if not isinstance(previous, Mapping):
        problems.append("previous is %s, not an object" % kind(previous))
    if not isinstance(changed, (list, tuple)):
        problems.append("changed is %s, not a list of property names" % kind(changed))
    elif not all(isinstance(name, str) and PROPERTY_NAME.match(name) for name in changed):
        problems.append("changed holds something other than property names")
    observed_at = _observed_at(change, problems)
    picked_device = _fields(device, fields, "device", problems) if isinstance(device, Mapping) else {}
    picked_previous = _fields(previous, fields, "previous", problems) if isinstance(previous, Mapping) else {}
    if problems:
        raise EventProblems(problems)
    return {"directory": change["directory"], "change": change["change"], "id": change["id"], "changed": list(changed),
            "observed_at": observed_at, "device": picked_device, "previous": picked_previous}
