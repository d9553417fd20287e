# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""The walk every write module takes, whatever the API: resolve -> check matches -> converge | remove -> report.

A directory (feishu_records.FeishuDeviceRecords, msgraph_devices.GraphDevices) knows how to read and
write its own objects; this file knows the order of the steps, so both modules read the same.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.common.warnings import warn

from ansible_collections.fleetguard.devices.plugins.module_utils.comparison import diff_entry
from ansible_collections.fleetguard.devices.plugins.module_utils.errors import InputError
from ansible_collections.fleetguard.devices.plugins.module_utils.lookups import (
    check_matches,
    identity,
    unique_targets,
)
from ansible_collections.fleetguard.devices.plugins.module_utils.outcomes import UNCERTAIN, report


def run_device_task(module, directory, identity_fields, desired, objects_key, changed_key):
    """Bring every device the task names to `desired` (or delete them with state=absent).

    Every identifier is resolved before any write; a missing or ambiguous one fails the task naming it.
    Returns the module result (see outcomes.report).
    """
    params = module.params
    state = params["state"]
    if state == "absent" and desired:
        # A delete that also names a state to reach is a mistake in the task: say so before any request.
        raise InputError("state=absent deletes the %ss; it cannot be combined with the properties to set (%s)"
                         % (directory.NOUN, ", ".join(sorted(desired))))
    field, values = identity(params, identity_fields)

    matches, hints = directory.resolve(field, values)
    check_matches(field, values, matches, state, id_key=directory.ID_KEY, noun=directory.NOUN, hints=hints)

    targets = unique_targets(values, matches, directory.ID_KEY)
    if state == "absent":
        changes = directory.remove(targets, module.check_mode)
    else:
        changes = directory.converge(targets, desired, module.check_mode)

    def diff_of(change):
        label = directory.label(change.before)
        if state == "absent":
            return diff_entry(directory.view(change.before, directory.ABSENT_VIEW), {}, label, "absent")
        return diff_entry(directory.view(change.before, desired), directory.view(change.after, desired), label)

    result = report(values, matches, changes, directory, objects_key, changed_key, diff_of if module._diff else None,
                    check_mode=module.check_mode)
    if module.check_mode and not result["failed"]:
        for outcome in result["outcomes"]:
            if outcome["outcome"] == UNCERTAIN:
                warn("check mode cannot say what a real run does to %s: %s" % (outcome["identifier"], outcome["reason"]))
    return result
