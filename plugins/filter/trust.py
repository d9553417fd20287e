# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the roles fleetguard.devices.quarantine and release share, as two filters (documented in
plugins/filter/<name>.yml):

- trust_lookups: the role's identifier variables (and its inventory hosts' ids) as one module call per
  identifier kind and directory;
- trust_preflight: what their check-mode pass found: the problems that stop the role before any write, and the
  ids the identifiers resolved to.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible_collections.fleetguard.devices.plugins.plugin_utils.identifiers import described, identifier_list, kind

# The identifier variables, by how their names end: the directory and the module option each one fills. The
# first of each directory also takes the inventory hosts' ids (host vars feishu_device_record_id, msgraph_id).
LOOKUPS = (
    ("feishu", "feishu_device_record_ids", "device_record_id", "feishu_ids"),
    ("feishu", "feishu_serial_numbers", "serial_number", None),
    ("feishu", "feishu_device_names", "device_name", None),
    ("msgraph", "msgraph_ids", "id", "msgraph_ids"),
    ("msgraph", "msgraph_device_ids", "device_id", None),
    ("msgraph", "msgraph_display_names", "display_name", None),
)
# How a failed pre-flight call is named in the role's message, per directory.
PREFLIGHT = (("feishu", "Feishu", "device_record_id"), ("msgraph", "Graph", "id"))


def _variable(identifiers, suffix):
    names = [name for name in identifiers if name == suffix or name.endswith("_" + suffix)]
    if len(names) != 1:
        raise AnsibleFilterError("trust_lookups: expected one identifier variable ending in %s, found %s"
                                 % (suffix, ", ".join(names) or "none"))
    return names[0]


def trust_lookups(identifiers, inventory=None):
    """The identifier variables (a mapping of their names to their values) and the inventory hosts' ids (the
    inventory_devices result of the host form) as the module calls to make: {feishu: [{field, ids}], msgraph: [...],
    identifier_variables: the names of those that hold a value}. Calls without ids are left out."""
    if not isinstance(identifiers, Mapping):
        raise AnsibleFilterError("trust_lookups: expected a mapping of the identifier variables, not %s"
                                 % described(identifiers))
    if not all(isinstance(name, str) for name in identifiers):
        raise AnsibleFilterError("trust_lookups: expected identifier variable names, not %s"
                                 % ", ".join(described(name) for name in identifiers if not isinstance(name, str)))
    if inventory is None:
        inventory = {}
    elif not isinstance(inventory, Mapping):
        raise AnsibleFilterError("trust_lookups: expected the inventory_devices result (a mapping), or none, not %s"
                                 % described(inventory))
    found = {"feishu": [], "msgraph": [], "identifier_variables": []}
    for directory, suffix, field, inventory_key in LOOKUPS:
        name = _variable(identifiers, suffix)
        ids = identifier_list(identifiers[name])
        if ids:
            found["identifier_variables"].append(name)
        if inventory_key:
            ids = identifier_list(ids + identifier_list(inventory.get(inventory_key)))
        if ids:
            found[directory].append({"field": field, "ids": ids})
    return found


def _results(registered, label):
    """The loop results of a registered pre-flight loop, each a mapping (none when the task did not run). The
    pre-flight is the gate before any write: a pass this cannot read stops the role, never reads as no problem."""
    if registered is None:
        return []
    where = "trust_preflight: the %s pass" % label
    if not isinstance(registered, Mapping):
        raise AnsibleFilterError("%s must be a registered loop of module calls, not %s" % (where, kind(registered)))
    if "results" not in registered and registered.get("skipped"):
        return []
    results = registered.get("results")
    if not isinstance(results, (list, tuple)):
        raise AnsibleFilterError("%s must be a registered loop of module calls, with results (a list), not %s"
                                 % (where, kind(results)))
    for number, result in enumerate(results, 1):
        outcomes = (result.get("outcomes") or []) if isinstance(result, Mapping) else None
        if not isinstance(outcomes, (list, tuple)) or not all(isinstance(outcome, Mapping) for outcome in outcomes):
            raise AnsibleFilterError("%s: result %d must be a module result with a list of outcomes (mappings), not %s"
                                     % (where, number, kind(result) if outcomes is None else "outcomes of " + kind(outcomes)))
    return list(results)


def trust_preflight(feishu_preflight, msgraph_preflight):
    """The check-mode pass's findings: {problems (each failed call's message, named by its directory), feishu_ids,
    msgraph_ids (the ids the identifiers resolved to, each once)}. A failed module result always carries msg; a
    good one never does."""
    passes = {"feishu": _results(feishu_preflight, "Feishu"), "msgraph": _results(msgraph_preflight, "Graph")}
    found = {"problems": []}
    for directory, label, id_key in PREFLIGHT:
        found["problems"].extend("%s: %s" % (label, result["msg"]) for result in passes[directory] if "msg" in result)
        ids = []
        for result in passes[directory]:
            for outcome in result.get("outcomes") or []:
                if outcome.get(id_key) and outcome[id_key] not in ids:
                    ids.append(outcome[id_key])
        found[directory + "_ids"] = ids
    return found


class FilterModule(object):
    """fleetguard.devices filters of the quarantine and release roles."""

    def filters(self):
        return {
            "trust_lookups": trust_lookups,
            "trust_preflight": trust_preflight,
        }
