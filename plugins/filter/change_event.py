# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""change_event: the change a rulebook hands a playbook, checked and reduced to what the sources set themselves
(documented in change_event.yml; why, in plugins/plugin_utils/change_event.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.fleetguard.devices.plugins.plugin_utils.change_event import (
    DEVICE_CHANGES,
    EventProblems,
    checked_change,
)
from ansible_collections.fleetguard.devices.plugins.plugin_utils.identifiers import identifier_list, kind


def _names(value, option):
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not all(isinstance(one, str) for one in value):
        raise AnsibleFilterError("change_event: %s must be a list of names, not %s" % (option, kind(value)))
    return identifier_list(value)


def change_event(ansible_eda, directories, changes=None, fields=None, playbook="this playbook"):
    directories = _names(directories, "directories")
    unknown = [name for name in directories if name not in ("msgraph", "feishu")]
    if not directories or unknown:
        raise AnsibleFilterError("change_event: directories must name msgraph and/or feishu, not %s" % ", ".join(unknown))
    try:
        return checked_change(ansible_eda, directories, _names(changes, "changes") if changes is not None else DEVICE_CHANGES,
                              _names(fields or [], "fields"))
    except EventProblems as problems:
        raise AnsibleFilterError("%s: nothing was read or written, since %s." % (playbook, problems))


class FilterModule(object):
    """fleetguard.devices filters of the Event-Driven Ansible playbooks."""

    def filters(self):
        return {"change_event": change_event}
