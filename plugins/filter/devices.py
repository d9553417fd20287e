# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters the roles use to read their inputs: identifier lists (identifier_list), the devices behind
inventory hosts (inventory_devices) and the posture they declare (declared_posture), and audit baselines
(baseline_plan). Each filter is documented in plugins/filter/<name>.yml (ansible-doc -t filter)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json
import unicodedata

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible_collections.fleetguard.devices.plugins.module_utils.feishu_records import DEVICE_OWNERSHIP, DEVICE_STATUS
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_devices import EXTENSION_ATTRIBUTES, V1_PROPERTIES
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_odata import guid_key

# The identifier options of the write modules, per directory, in the order error messages name them.
FEISHU_IDENTIFIERS = ("device_record_id", "serial_number", "device_name")
MSGRAPH_IDENTIFIERS = ("id", "device_id", "display_name")

# What a baseline entry may ask of a Feishu record: the enum fields the module manages, by name.
FEISHU_DESIRED = {"device_status": list(DEVICE_STATUS), "device_ownership": list(DEVICE_OWNERSHIP)}

# What it may ask of a Graph device: every property the module sets, except a rename (in a baseline,
# display_name identifies the device). V1_PROPERTIES names the properties, not their types: the module
# documents these three as booleans; every other one but extension_attributes is a string.
_NOT_COMPARED = ("new_display_name", "extension_attributes")
_BOOLEAN_OPTIONS = ("account_enabled", "is_compliant", "is_managed")
MSGRAPH_BOOLEANS = tuple(option for option in V1_PROPERTIES if option in _BOOLEAN_OPTIONS)
MSGRAPH_STRINGS = tuple(option for option in V1_PROPERTIES if option not in _NOT_COMPARED + _BOOLEAN_OPTIONS)
MSGRAPH_DESIRED = MSGRAPH_BOOLEANS + MSGRAPH_STRINGS + ("extension_attributes",)

KNOWN_FIELDS = frozenset(
    ("name",) + FEISHU_IDENTIFIERS + MSGRAPH_IDENTIFIERS + tuple(FEISHU_DESIRED) + MSGRAPH_DESIRED + tuple(EXTENSION_ATTRIBUTES))

# Where the audit role's CSV reader (roles/audit/templates/csv.json.j2) keeps the cells of a row beyond the
# header's columns ({"line": 4, "columns": 2, "cells": [...]}), so that the plan refuses the row, naming its
# line, instead of the reader dropping them.
EXTRA_CELLS = "_extra_cells"

# How a baseline (a CSV cell in particular) spells a boolean, and an empty extension attribute.
TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")
EMPTY_WORDS = ("", "null", "~")


def _shown(value):
    """A value for an error message: JSON where possible, cut to 200 characters."""
    try:
        text = json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def _described(value):
    """A value for an error message, with its type: 'a dict: {...}', or 'null'."""
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        kind = "dict"
    elif isinstance(value, (list, tuple)):
        kind = "list"
    else:
        kind = type(value).__name__
    return "a %s: %s" % (kind, _shown(value))


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def identifier_list(value):
    """One identifier input of a role as a list of trimmed, non-empty, unique strings.

    A list is taken item by item; a string (what an AWX survey text field gives) is one identifier per line
    when it has line breaks (a name may hold a comma: "Smith, John's iPad"), and single-line text is split at
    commas; a number is one identifier; null, an empty string or an empty list give []. Exact duplicates
    are dropped, the first kept; values that differ only in case are two identifiers.
    """
    if value is None:
        return []
    if isinstance(value, str):
        # A comma left at a line's end ("a,\nb") is a separator, not part of the name.
        multi_line = "\n" in value or "\r" in value
        items = [_trimmed(line, also=",") for line in value.splitlines()] if multi_line else value.split(",")
    elif _is_number(value):
        items = [value]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise AnsibleFilterError("identifier_list: expected a list of identifiers, or one string of them separated by"
                                 " commas or new lines, not %s" % _described(value))
    identifiers = []
    seen = set()
    for position, item in enumerate(items, 1):
        if _is_number(item):
            item = str(item)
        elif not isinstance(item, str):
            raise AnsibleFilterError("identifier_list: item %d is not an identifier (a string or a number): %s"
                                     % (position, _shown(item)))
        item = _trimmed(item)
        # Exact comparison: the modules match identifiers exactly, and two Feishu device names that differ
        # only in case are two devices.
        if item and item not in seen:
            seen.add(item)
            identifiers.append(item)
    return identifiers


def _trimmed(text, also=""):
    """`text` without white space, invisible format characters or characters in `also` at either end. Survey text pasted from a
    document or a spreadsheet can carry a byte-order mark or a zero-width space: kept, it would make a name
    that matches no device, and an exclusion that silently protects nothing."""
    start, end = 0, len(text)
    while start < end and (_blank(text[start]) or text[start] in also):
        start += 1
    while end > start and (_blank(text[end - 1]) or text[end - 1] in also):
        end -= 1
    return text[start:end]


def _blank(character):
    return character.isspace() or unicodedata.category(character) == "Cf"


# The host vars the inventory plugins (feishu_device_records, msgraph_devices) set on a device host: the
# device's id in each directory, and the key inventory_devices lists those ids under.
HOST_ID_VARS = {"feishu": ("feishu_device_record_id", "feishu_ids"), "msgraph": ("msgraph_id", "msgraph_ids")}


def _host_var(variables, name):
    """A host var as a string, or '' when the host does not have it (or it is empty)."""
    value = variables.get(name)
    return "" if value is None else str(value).strip()


def inventory_devices(hosts, hostvars, read=None, directories=None):
    """The devices behind inventory hosts, read once for a role's host form.

    `hosts` is an identifier_list input of host names, `hostvars` the play's hostvars. A host is a device host
    when it has an id var of one of `directories` (default both). Returns {hosts, unknown (not in the
    inventory), not_devices, feishu_ids, msgraph_ids, devices}; each device is {name, feishu_device_record_id,
    msgraph_id, vars}, vars holding those of the host vars named in `read` that the host has.
    """
    directories = identifier_list(directories) or sorted(HOST_ID_VARS)
    unknown_directories = [name for name in directories if name not in HOST_ID_VARS]
    if unknown_directories:
        raise AnsibleFilterError("inventory_devices: directories must be among %s, not %s"
                                 % (", ".join(sorted(HOST_ID_VARS)), ", ".join(unknown_directories)))
    read = identifier_list(read)
    found = {"hosts": [], "unknown": [], "not_devices": [], "devices": [], "feishu_ids": [], "msgraph_ids": []}
    for host in identifier_list(hosts):
        if host not in hostvars:
            found["unknown"].append(host)
            continue
        variables = hostvars[host]
        device = {"name": host, "vars": dict((name, variables[name]) for name in read if name in variables)}
        for directory, (id_var, ids_key) in sorted(HOST_ID_VARS.items()):
            device[id_var] = _host_var(variables, id_var) if directory in directories else ""
            if device[id_var]:
                found[ids_key].append(device[id_var])
        found["hosts"].append(host)
        if any(device[id_var] for id_var, dummy in HOST_ID_VARS.values()):
            found["devices"].append(device)
        else:
            found["not_devices"].append(host)
    return found


# The host vars that declare a device host's desired state (its posture), per directory, and the baseline
# field each one asks for: what the audit role's host form and playbooks/enforce_posture.yml read.
POSTURE_HOST_VARS = {
    "feishu": (("feishu_desired_status", "device_status"), ("feishu_desired_ownership", "device_ownership")),
    "msgraph": (("msgraph_desired_account_enabled", "account_enabled"),
                ("msgraph_desired_extension_attributes", "extension_attributes")),
}


def _declared(value):
    """A posture host var's value, or None where it declares nothing: null, an empty string or mapping."""
    return None if value is None or (isinstance(value, (str, Mapping)) and not value) else value


def declared_posture(hosts, hostvars, repeats=None):
    """inventory_devices, plus the baseline entries the hosts' posture host vars declare (`entries`, for
    baseline_plan) and the device hosts that declare none (`undeclared`).

    Hosts that name one device (ids compared as its API compares them) are checked against each other:
    `conflicts` names both hosts, the device and both values of each field they declare differently;
    `repeats` lists the entries dropped because an earlier host declares the same posture for that device
    ({name, directory, device, same_as}); `problems` names each host's malformed declaration in host var terms.
    `repeats` given (the whole run's, read before its first batch) drops those entries too, so a play batch
    never writes a device that an earlier batch's host writes.
    """
    names = [name for pairs in POSTURE_HOST_VARS.values() for name, dummy in pairs]
    found = inventory_devices(hosts, hostvars, read=names)
    found.update(entries=[], undeclared=[], conflicts=[], repeats=[], problems=[])
    dropped = set((r.get("name"), r.get("directory")) for r in repeats or [] if isinstance(r, Mapping))
    first_by_device = {}
    for device in found["devices"]:
        declared = False
        for directory, (id_var, dummy) in sorted(HOST_ID_VARS.items()):
            desired = dict((field, _declared(device["vars"].get(name))) for name, field in POSTURE_HOST_VARS[directory])
            if device[id_var] and any(value is not None for value in desired.values()):
                declared = True
                # The entry names the device by its id: device_record_id, or id.
                identifier = (FEISHU_IDENTIFIERS if directory == "feishu" else MSGRAPH_IDENTIFIERS)[0]
                entry = dict(desired, name=device["name"], **{identifier: device[id_var]})
                if _first_declaration(found, first_by_device, directory, identifier, entry) \
                        and (device["name"], directory) not in dropped:
                    found["entries"].append(entry)
        if not declared:
            found["undeclared"].append(device["name"])
    return found


# How a baseline field is spelled as the posture host var that declares it, for messages about hosts.
_POSTURE_VAR_OF = dict((field, name) for pairs in POSTURE_HOST_VARS.values() for name, field in pairs)
_NOUN_OF = {"feishu": "Feishu device record", "msgraph": "Graph device"}


def _in_host_var_terms(text):
    for field, name in sorted(_POSTURE_VAR_OF.items()):
        text = text.replace(field, name)
    return text


def _posture_field(key):
    return "%s.%s" % (_POSTURE_VAR_OF["extension_attributes"], key) if key in EXTENSION_ATTRIBUTES else _POSTURE_VAR_OF[key]


def _first_declaration(found, first_by_device, directory, identifier, entry):
    """Compare `entry` with the first entry of the same device; False when it only repeats that one's posture.

    Its problems and its conflicts with the first entry go into `found`. A malformed entry is kept, for
    baseline_plan to refuse, and compared with nothing.
    """
    planned = _plan_entry(0, entry)
    found["problems"].extend("%s: %s" % (entry["name"], _in_host_var_terms(p)) for p in planned["problems"])
    if planned["problems"]:
        return True
    asked = _desired_pairs(planned["desired"])
    key = (directory, device_key(directory, identifier, entry[identifier]))
    if key not in first_by_device:
        first_by_device[key] = (entry, asked)
        return True
    earlier, before = first_by_device[key]
    device = "%s %s" % (_NOUN_OF[directory], earlier[identifier])
    if entry[identifier] != earlier[identifier]:
        device += " (%s names it %s)" % (entry["name"], entry[identifier])
    clashes = sorted(field for field in asked if field in before and before[field] != asked[field])
    for field in clashes:
        found["conflicts"].append("%s: %s declares %s=%s, %s declares %s" % (
            device, earlier["name"], _posture_field(field), _shown(before[field]), entry["name"], _shown(asked[field])))
    if asked != before:
        return True
    found["repeats"].append({"name": entry["name"], "directory": directory, "device": earlier[identifier],
                             "same_as": earlier["name"]})
    return False


def _extra_cells_problem(extra):
    """What is wrong with a CSV row that has more cells than the header has columns."""
    if not isinstance(extra, Mapping):
        extra = {"cells": extra}
    cells = extra.get("cells")
    cells = list(cells) if isinstance(cells, (list, tuple)) else [cells]
    where = "CSV line %s: " % extra["line"] if extra.get("line") is not None else ""
    columns = "the header's %s column(s)" % extra["columns"] if extra.get("columns") is not None else "the header's columns"
    return "%s%d cell(s) beyond %s: %s" % (where, len(cells), columns, _shown(cells))


def _given_fields(raw, problems):
    """The fields an entry sets: strings trimmed, empty values dropped (except null extension attributes)."""
    given = {}
    for key, value in raw.items():
        if key == EXTRA_CELLS:
            problems.append(_extra_cells_problem(value))
        elif key not in KNOWN_FIELDS:
            problems.append("unknown field %s" % key)
        elif value is not None and not (isinstance(value, str) and value.strip() == ""):
            given[key] = value.strip() if isinstance(value, str) else value
        elif key in EXTENSION_ATTRIBUTES and value is None:
            given[key] = None
    return given


def _feishu_desired(given, desired, problems):
    """Fill `desired` from the Feishu fields of `given`; return the Graph fields it holds too."""
    for key, names in FEISHU_DESIRED.items():
        if key in given:
            name = str(given[key]).lower()
            if name in names:
                desired[key] = name
            else:
                problems.append("%s must be one of %s, not %s" % (key, ", ".join(names), given[key]))
    return [key for key in MSGRAPH_DESIRED + tuple(EXTENSION_ATTRIBUTES) if key in given]


def _msgraph_desired(given, desired, problems):
    """Fill `desired` from the Graph fields of `given`; return the Feishu fields it holds too."""
    for key in MSGRAPH_BOOLEANS:
        if key in given:
            value = given[key]
            if isinstance(value, bool):
                desired[key] = value
            elif str(value).lower() in TRUE_WORDS:
                desired[key] = True
            elif str(value).lower() in FALSE_WORDS:
                desired[key] = False
            else:
                problems.append("%s must be true or false, not %s" % (key, value))
    for key in MSGRAPH_STRINGS:
        if key in given:
            desired[key] = str(given[key])
    nested = given.get("extension_attributes", {})
    if not isinstance(nested, Mapping):
        problems.append("extension_attributes must be a mapping")
        nested = {}
    attributes = {}
    pairs = list(nested.items()) + [(key, value) for key, value in given.items() if key in EXTENSION_ATTRIBUTES]
    for key, value in pairs:
        if key not in EXTENSION_ATTRIBUTES:
            problems.append("extension attribute %s is not one of extensionAttribute1..15" % key)
        elif value is not None and not isinstance(value, str):
            # YAML's true would reach Graph as "True": a tag is text, so it must be written as text.
            problems.append("extension attribute %s must be a string or null, not %s" % (key, _shown(value)))
        elif value is None or value.strip() in EMPTY_WORDS:
            attributes[key] = None
        else:
            attributes[key] = str(value)
    if attributes:
        desired["extension_attributes"] = attributes
    return [key for key in FEISHU_DESIRED if key in given]


def _plan_entry(number, raw):
    """One numbered baseline entry: where to look, by which identifier, what to expect, what is wrong."""
    problems = []
    desired = {}
    if not isinstance(raw, Mapping):
        raw = {}
        problems.append("not a mapping of field names to values")
    given = _given_fields(raw, problems)
    identifiers = [key for key in FEISHU_IDENTIFIERS + MSGRAPH_IDENTIFIERS if key in given]
    if len(identifiers) != 1:
        problems.append("needs exactly one of %s (has %s)"
                        % (", ".join(FEISHU_IDENTIFIERS + MSGRAPH_IDENTIFIERS), ", ".join(identifiers) or "none"))
    field = identifiers[0] if identifiers else ""
    directory = "feishu" if field in FEISHU_IDENTIFIERS else "msgraph"
    if directory == "feishu":
        foreign = _feishu_desired(given, desired, problems)
    else:
        foreign = _msgraph_desired(given, desired, problems)
    if field and foreign:
        problems.append("%s cannot be checked on a %s device (found by %s)" % (", ".join(foreign), directory, field))
    if field and not desired and not problems:
        problems.append("no desired state to compare")
    return {"entry": number, "name": str(given.get("name", "")), "directory": directory if field else None,
            "field": field, "value": str(given[field]) if field else None, "desired": desired, "problems": problems}


def _desired_pairs(desired):
    """A desired state as flat (field, value) pairs: each extension attribute is a field of its own."""
    pairs = dict((key, value) for key, value in desired.items() if key != "extension_attributes")
    pairs.update(desired.get("extension_attributes", {}))
    return pairs


def device_key(directory, field, value):
    """An identifier as its API compares it: Graph ids and deviceIds are GUIDs, equal whatever their case;
    Feishu record ids are digits, and names are compared exactly by both modules."""
    if directory == "msgraph" and field in ("id", "device_id"):
        return guid_key(value)
    return str(value)


def _flag_conflicts(entries):
    """Give a problem to each entry that asks a field of a device another entry asks differently.

    Two entries for the same identifier that agree (or set different fields) are fine; a device cannot be
    both trusted and untrusted, and comparing it both ways would report it drifted and in sync at once."""
    first_by_device = {}
    for entry in entries:
        if entry["problems"]:
            continue
        device = (entry["directory"], entry["field"], device_key(entry["directory"], entry["field"], entry["value"]))
        asked = _desired_pairs(entry["desired"])
        for earlier in first_by_device.setdefault(device, []):
            before = _desired_pairs(earlier["desired"])
            clashes = sorted(key for key in asked if key in before and before[key] != asked[key])
            for key in clashes:
                message = "%s %s=%s conflicts with entry %d, which asks %s for the same device" % (
                    entry["field"], key, _shown(asked[key]), earlier["entry"], _shown(before[key]))
                entry["problems"].append(message)
            if clashes:
                earlier["problems"].append("conflicts with entry %d (%s)" % (entry["entry"], ", ".join(clashes)))
        first_by_device[device].append(entry)


def baseline_plan(baseline):
    """A baseline (a list of entries, each a mapping) as the audit's plan.

    entries: every entry numbered from 1, with its directory, identifier field and value, the desired
    state it asks for, and its problems (all of them, so one run names every malformed entry).
    feishu_groups / msgraph_groups: the entries without problems, grouped by identifier field and desired
    state, so that one module call checks a whole group.
    """
    if not isinstance(baseline, (list, tuple)):
        raise AnsibleFilterError("baseline_plan: expected a list of baseline entries, not %s" % _described(baseline))
    entries = [_plan_entry(number, raw) for number, raw in enumerate(baseline, 1)]
    _flag_conflicts(entries)
    groups = {}
    group_devices = {}  # group key -> the devices it holds, as the API tells them apart
    for entry in entries:
        if entry["problems"]:
            continue
        key = "%s|%s|%s" % (entry["directory"], entry["field"], json.dumps(entry["desired"], sort_keys=True))
        group = groups.setdefault(key, {"key": key, "directory": entry["directory"], "field": entry["field"],
                                        "desired": copy.deepcopy(entry["desired"]), "ids": [], "entries": []})
        known = group_devices.setdefault(key, set())
        if device_key(entry["directory"], entry["field"], entry["value"]) not in known:
            known.add(device_key(entry["directory"], entry["field"], entry["value"]))
            group["ids"].append(entry["value"])
        group["entries"].append(entry["entry"])
    return {"entries": entries,
            "feishu_groups": [group for group in groups.values() if group["directory"] == "feishu"],
            "msgraph_groups": [group for group in groups.values() if group["directory"] == "msgraph"]}


class FilterModule(object):
    """fleetguard.devices filters."""

    def filters(self):
        return {
            "identifier_list": identifier_list,
            "inventory_devices": inventory_devices,
            "declared_posture": declared_posture,
            "baseline_plan": baseline_plan,
        }
