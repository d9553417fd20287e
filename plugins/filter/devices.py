# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters the roles use to read their inputs: identifier lists (identifier_list), the devices behind
inventory hosts (inventory_devices) and the posture they declare (declared_posture), and audit baselines
(baseline_plan). Each filter is documented in plugins/filter/<name>.yml (ansible-doc -t filter)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible_collections.fleetguard.devices.plugins.module_utils.errors import shown_json
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_properties import EXTENSION_ATTRIBUTES
from ansible_collections.fleetguard.devices.plugins.plugin_utils import baseline
from ansible_collections.fleetguard.devices.plugins.plugin_utils.baseline import (
    FEISHU_IDENTIFIERS,
    MSGRAPH_IDENTIFIERS,
    desired_pairs,
    device_key,
    plan_entry,
)
from ansible_collections.fleetguard.devices.plugins.plugin_utils.identifiers import identifier_list


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
                first = _first_declaration(found, first_by_device, directory, identifier, entry)
                if first and (device["name"], directory) not in dropped:
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
    planned = plan_entry(0, entry)
    found["problems"].extend("%s: %s" % (entry["name"], _in_host_var_terms(p)) for p in planned["problems"])
    if planned["problems"]:
        return True
    asked = desired_pairs(planned["desired"])
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
            device, earlier["name"], _posture_field(field), shown_json(before[field]), entry["name"], shown_json(asked[field])))
    if asked != before:
        return True
    found["repeats"].append({"name": entry["name"], "directory": directory, "device": earlier[identifier],
                             "same_as": earlier["name"]})
    return False


def baseline_plan(entries):
    """A baseline (a list of entries, each a mapping) as the audit's plan.

    entries: every entry numbered from 1, with its directory, identifier field and value, the desired
    state it asks for, and its problems (all of them, so one run names every malformed entry).
    feishu_groups / msgraph_groups: the entries without problems, grouped by identifier field and desired
    state, so that one module call checks a whole group.
    """
    return baseline.plan(entries)


class FilterModule(object):
    """fleetguard.devices filters."""

    def filters(self):
        return {
            "identifier_list": identifier_list,
            "inventory_devices": inventory_devices,
            "declared_posture": declared_posture,
            "baseline_plan": baseline_plan,
        }
