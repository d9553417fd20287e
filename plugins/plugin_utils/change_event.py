# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""The change a rulebook hands a playbook (ansible_eda.event.fleetguard, built by module_utils/device_changes.py),
checked and reduced to what the sources set themselves.

ansible-rulebook's run_playbook hands the event over as `-e @file`, which ansible-core takes for trusted templates:
every string in it is rendered when it is read. A device name is chosen by the device's user, so a name such as
"{{ lookup('pipe', ...) }}" would run on the controller. Nothing of the event is rendered here, not even the keys read:
ansible-core 2.19+ hands a filter its variables as lazy containers, which render a trusted string the moment it is
read (`.get()`, `[]`, iteration), so a template as the id that renders to a GUID would run its lookup first and then
pass. Every container is read through `_stored()`, which takes what ansible-core stored, unrendered. The keys read are
the directory, the change, the id, the names of the changed properties, when it was seen, and the device fields asked
for; each of them is refused unless it has the form the sources give it (none of which holds a `{` or a `#`, and a
template holds a `{` or starts with a `#jinja2:` header), and what comes back is plain values, no longer trusted.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import math
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
# strptime alone takes other digits than 0-9 (\d: "٢٠٢٦") and a lower-case t or z: the form is checked first.
OBSERVED_AT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\Z")
# A property name as the sources list it in `changed`, and a field value a playbook may read (a status, a flag).
PROPERTY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}\Z")
ENUM_TEXT = re.compile(r"[A-Za-z0-9_.:-]{0,64}\Z")
# Longest text of the event a refusal repeats; longer text, and text with a `{` or a `#` (it may be a template: a
# `#jinja2:` header can set other delimiters), is described by its length.
SHOWN_TEXT_MAX = 100
# Largest number a field may hold (a 64-bit integer): the sources give flags and status texts.
INT_MAX = 2 ** 63 - 1
# The resync event carries no device: it asks for a full read, which these playbooks do not do.
DEVICE_CHANGES = tuple(change for change in CHANGES if change != "resync")


class EventProblems(Exception):
    """What is wrong with an event, one sentence each."""

    def __init__(self, problems):
        super(EventProblems, self).__init__("; ".join(problems))
        self.problems = problems


def _stored(value):
    """`value` as ansible-core stored it, never rendered. A lazy container of ansible-core 2.19+ renders a trusted
    template when an item is read; its _non_lazy_copy() (2.19.0 to 2.21 at least) is a copy of what it holds, items
    unrendered, whose own containers are the stored ones (not lazy). A lazy container without it is refused: reading
    it would render it."""
    non_lazy_copy = getattr(value, "_non_lazy_copy", None)
    if callable(non_lazy_copy):
        return non_lazy_copy()
    if type(value).__module__.startswith("ansible._internal._templating"):
        raise EventProblems(["the event came as %s, which this ansible-core renders when it is read"
                             % type(value).__name__])
    return value


def _shown(value):
    """A refused value for a message: as JSON when it is a flag, a number, null or short text without a `{` or a `#`
    (no template); else its type alone, and a string's length."""
    if isinstance(value, str):
        if "{" in value or "#" in value or len(value) > SHOWN_TEXT_MAX:
            return "a string of %d characters" % len(value)
        return shown_json(str(value))
    if isinstance(value, int) and not isinstance(value, bool) and not -INT_MAX <= value <= INT_MAX:
        return "an integer of %d bits" % value.bit_length()  # str() refuses one of over 4300 digits
    if value is None or isinstance(value, (bool, int, float)):
        return shown_json(value)
    return kind(value)


def _one_of(values):
    values = list(values)
    return values[0] if len(values) == 1 else "%s or %s" % (", ".join(values[:-1]), values[-1])


def _native(value):
    """A checked flag, number, null or text as the plain Python value (no ansible-core tag: not trusted as a template)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


def _scalar(value):
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -INT_MAX <= value <= INT_MAX
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str) and bool(ENUM_TEXT.match(value))


def _fields(mapping, fields, label, problems):
    """The fields asked for that `mapping` holds; a value that is no flag, number or short enum text is refused."""
    picked = {}
    for field in fields:
        if field in mapping:
            value = mapping[field]
            if _scalar(value):
                picked[field] = _native(value)
            else:
                problems.append("%s.%s is %s, not a flag, a number or a status" % (label, field, kind(value)))
    return picked


def _identity(change, directories, changes, problems):
    directory, action, object_id = change.get("directory"), change.get("change"), change.get("id")
    if directory not in directories:
        problems.append("directory %s is not %s" % (_shown(directory), _one_of(directories)))
    if action not in changes:
        problems.append("change %s is not %s" % (_shown(action), _one_of(changes)))
    pattern, described = DIRECTORY_IDS[directory if directory in directories else directories[0]]
    if not isinstance(object_id, str) or not pattern.fullmatch(object_id):
        problems.append("id %s is not %s" % (_shown(object_id), described))


def _changed(changed, problems):
    if not isinstance(changed, (list, tuple)):
        problems.append("changed is %s, not a list of property names" % kind(changed))
        return []
    if not all(isinstance(name, str) and PROPERTY_NAME.match(name) for name in changed):
        problems.append("changed holds something other than property names")
        return []
    seen, twice = set(), set()
    for name in changed:
        (twice if name in seen else seen).add(name)
    twice = sorted(twice)
    if twice:
        problems.append("changed names %s more than once" % ", ".join(twice))
    return [str(name) for name in changed]


def _observed_at(change, problems):
    observed_at = change.get("observed_at")
    try:
        if not isinstance(observed_at, str) or not OBSERVED_AT.match(observed_at):
            raise ValueError(observed_at)
        datetime.datetime.strptime(observed_at, OBSERVED_AT_FORMAT)
    except ValueError:
        problems.append("observed_at %s is not a UTC time like 2026-12-07T09:05:31Z" % _shown(observed_at))
    return observed_at


def checked_change(ansible_eda, directories, changes=DEVICE_CHANGES, fields=()):
    """The change of `ansible_eda` (what a rulebook hands a playbook) with only the keys the sources set themselves:
    directory, change, id, changed, observed_at, and of `device` and `previous` the `fields` asked for that they hold.
    Nothing of it is rendered (see the top); what comes back is plain values. Raises EventProblems naming every
    problem."""
    ansible_eda = _stored(ansible_eda)
    event = _stored(ansible_eda.get("event")) if isinstance(ansible_eda, Mapping) else None
    change = _stored(event.get("fleetguard")) if isinstance(event, Mapping) else None
    if not isinstance(change, Mapping):
        raise EventProblems(["this run has no ansible_eda.event.fleetguard (a rulebook hands the event of"
                             " msgraph_device_changes or feishu_device_record_changes over as ansible_eda.event)"])
    problems = []
    _identity(change, list(directories), list(changes), problems)
    device, previous = _stored(change.get("device")), _stored(change.get("previous"))
    if not isinstance(device, Mapping):
        problems.append("device is %s, not an object" % kind(device))
    if not isinstance(previous, Mapping):
        problems.append("previous is %s, not an object" % kind(previous))
    changed = _changed(_stored(change.get("changed")), problems)
    observed_at = _observed_at(change, problems)
    picked_device = _fields(device, fields, "device", problems) if isinstance(device, Mapping) else {}
    picked_previous = _fields(previous, fields, "previous", problems) if isinstance(previous, Mapping) else {}
    if problems:
        raise EventProblems(problems)
    return {"directory": str(change["directory"]), "change": str(change["change"]), "id": str(change["id"]),
            "changed": changed, "observed_at": str(observed_at), "device": picked_device, "previous": picked_previous}
