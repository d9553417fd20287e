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

DIRECTORIES = ("msgraph", "feishu")


def _refused(playbook, reason):
    return AnsibleFilterError("%s: nothing was read or written, since %s." % (playbook, reason))


def _names(value, option, playbook):
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not all(isinstance(one, str) for one in value):
        raise _refused(playbook, "the change_event option %s must be a list of names, not %s" % (option, kind(value)))
    return identifier_list(value)


def _known(names, option, known, playbook):
    """`names` when it names some of `known` and nothing else (an empty list would refuse every event)."""
    unknown = [name for name in names if name not in known]
    if not names or unknown:
        expected = " and/or ".join(known) if option == "directories" else "any of " + ", ".join(known)
        raise _refused(playbook, "the change_event option %s must name %s, not %s" % (option, expected, ", ".join(unknown) or "none"))
    return names


def change_event(ansible_eda, directories, changes=None, fields=None, playbook="this playbook"):
    playbook = playbook if isinstance(playbook, str) and playbook else "this playbook"
    directories = _known(_names(directories, "directories", playbook), "directories", DIRECTORIES, playbook)
    changes = DEVICE_CHANGES if changes is None else _known(_names(changes, "changes", playbook), "changes", DEVICE_CHANGES, playbook)
    try:
        return checked_change(ansible_eda, directories, changes, _names([] if fields is None else fields, "fields", playbook))
    except EventProblems as problems:
        raise _refused(playbook, problems)


class FilterModule(object):
    """fleetguard.devices filters of the Event-Driven Ansible playbooks."""

    def filters(self):
        return {"change_event": change_event}
