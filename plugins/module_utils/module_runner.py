# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""The end of every module's main(): build the client, call run(), and turn the collection's errors
into fail_json in one place."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import FleetguardError, LookupFailure
from ansible_collections.fleetguard.devices.plugins.module_utils.transport import HAS_REQUESTS, REQUESTS_IMPORT_ERROR


def run_module(module, make_client, run):
    """`make_client(params)` builds the API client; `run(module, client)` returns the module result, with
    `failed` set when a bulk run left some devices undone (its `msg` names them)."""
    if not HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib("requests"), exception=REQUESTS_IMPORT_ERROR)
    try:
        result = run(module, make_client(module.params))
    except LookupFailure as exc:
        module.fail_json(msg=str(exc), problems=exc.problems, changed=False)
    except FleetguardError as exc:
        module.fail_json(msg=str(exc), error=exc.to_dict(), changed=False)
    if result.get("failed"):
        module.fail_json(**result)
    module.exit_json(**result)
