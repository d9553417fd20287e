#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: msgraph_device_info
short_description: Read Microsoft Entra devices through Microsoft Graph
version_added: 0.1.0
description:
  - Returns devices by object id, device id or display name (read in batches of 20), or all devices matching
    a raw OData C($filter), following C(@odata.nextLink) through every page.
  - At most one of O(id), O(device_id), O(display_name) and O(filter). Every device a display name matches is
    returned; values that match nothing are named in RV(missing).
  - O(last_sign_in_before) and O(last_sign_in_after) select devices by their last sign-in
    (C(approximateLastSignInDateTime)) on the server, alone or together with O(filter), not with an identifier.
  - With O(advanced_query=true), RV(count) holds the total Graph reports.
  - Never changes anything.
author:
  - Fleetguard devices team (@fleetguard)
extends_documentation_fragment:
  - fleetguard.devices.msgraph
  - fleetguard.devices.attributes.info_module
  - fleetguard.devices.attributes.msgraph_group
  - fleetguard.devices.msgraph_devices
  - fleetguard.devices.msgraph_devices.identity
  - fleetguard.devices.msgraph_devices.query
options:
  limit:
    description:
      - Stop after this many devices. Without it every page is read.
    type: int
  last_sign_in_before:
    description:
      - Only devices whose last sign-in (C(approximateLastSignInDateTime)) is at or before this time, sent as
        C(approximateLastSignInDateTime le <time>) in C($filter), joined to O(filter) with C(and).
      - A date (V(2025-07-01), meaning 00:00 UTC that day), a date and time in ISO 8601 (V(2025-07-01T08:30:00Z),
        V(2025-07-01T10:30:00+02:00); without an offset it is UTC), or a number of days before now (V(90d)).
      - The literal Graph receives is rebuilt from the parsed time, in UTC and unquoted, as Graph requires for
        this property. A value of another form fails the task before any request, naming it.
      - Devices that never signed in (no timestamp, which Graph means as "unknown") match neither bound; find them
        with O(filter=approximateLastSignInDateTime eq null) and O(advanced_query=true).
      - Graph moves the timestamp only when the stored one is about 14 days old (give or take 5), so a device in
        daily use can look up to about 19 days idle.
    type: str
    version_added: 1.1.0
  last_sign_in_after:
    description:
      - Only devices whose last sign-in is at or after this time (C(approximateLastSignInDateTime ge <time>)),
        in the forms of O(last_sign_in_before).
      - With both, O(last_sign_in_after) must not be later than O(last_sign_in_before).
    type: str
    version_added: 1.1.0
seealso:
  - module: fleetguard.devices.msgraph_device
"""

EXAMPLES = r"""
- name: Disabled Windows devices
  fleetguard.devices.msgraph_device_info:
    filter: "operatingSystem eq 'Windows' and accountEnabled eq false"
  register: disabled

- name: Devices tagged by the quarantine role (an advanced query)
  fleetguard.devices.msgraph_device_info:
    filter: "startswith(extensionAttributes/extensionAttribute15, 'quarantine:')"
    advanced_query: true
    select: [id, displayName, extensionAttributes]
  register: quarantined

- name: Windows devices that have not signed in for 90 days (approximateLastSignInDateTime le <now - 90 days>)
  fleetguard.devices.msgraph_device_info:
    filter: "operatingSystem eq 'Windows'"
    last_sign_in_before: 90d
  register: stale

- name: Devices last seen in the first half of 2025
  fleetguard.devices.msgraph_device_info:
    last_sign_in_after: "2025-01-01"
    last_sign_in_before: "2025-06-30T23:59:59Z"

- name: Two devices by display name
  fleetguard.devices.msgraph_device_info:
    display_name: [FG-WS-0001, "Bob's iPhone"]
"""

RETURN = r"""
devices:
  description: The devices found, with Graph's property names.
  returned: always
  type: list
  elements: dict
  sample:
    - id: 6a59ea83-02bd-468f-a40b-f2c3d1821983
      deviceId: eab73519-780d-4d43-be6d-a4a89af2a348
      displayName: FG-WS-0001
      accountEnabled: true
      operatingSystem: Windows
missing:
  description: Values of O(id), O(device_id) or O(display_name) that matched no device.
  returned: always
  type: list
  elements: str
  sample: []
count:
  description: The total Graph reported (C(@odata.count)) for the query.
  returned: when O(advanced_query=true) and O(filter) or no identifier is given
  type: int
  sample: 42
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import InputError
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_client import GraphClient
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_devices import GraphDevices
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_odata import DeviceAddress, sign_in_filter
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_properties import IDENTITY_FIELDS
from ansible_collections.fleetguard.devices.plugins.module_utils.module_runner import run_module
from ansible_collections.fleetguard.devices.plugins.module_utils.options import MSGRAPH_OPTIONS, argument_spec


def run(module, client):
    params = module.params
    limit = params.get("limit")
    if limit is not None and limit < 1:
        raise InputError("limit must be at least 1, not %d" % limit)
    # Checked before any request: a bad bound names its value, and no device is read.
    sign_in = sign_in_filter(params.get("last_sign_in_before"), params.get("last_sign_in_after"))
    devices = GraphDevices(client, DeviceAddress(params["api_version"], params.get("user"), select=params.get("select")))
    result = dict(changed=False, devices=[], missing=[])
    for field in IDENTITY_FIELDS:
        values = params.get(field)
        if values:
            matches, dummy_hints = devices.resolve(field, values)
            for value in dict.fromkeys(values):
                if matches[value]:
                    result["devices"].extend(matches[value])
                else:
                    result["missing"].append(value)
            if limit:
                result["devices"] = result["devices"][:limit]
            return result

    first_page = {}

    def remember_count(page):
        first_page.setdefault("count", page.get("@odata.count"))

    result["devices"] = list(devices.iter_matching(combined_filter(params.get("filter"), sign_in),
                                                   params["advanced_query"], limit=limit, on_page=remember_count))
    if params["advanced_query"] and first_page.get("count") is not None:
        result["count"] = first_page["count"]
    return result


def combined_filter(user_filter, sign_in):
    """The user's raw $filter and the sign-in bounds, joined with `and`; the user's in parentheses, so that an
    `or` inside it cannot widen the bounds."""
    if user_filter and sign_in:
        return "(%s) and %s" % (user_filter, sign_in)
    return user_filter or sign_in


def main():
    spec = dict(
        id=dict(type="list", elements="str"),
        device_id=dict(type="list", elements="str"),
        display_name=dict(type="list", elements="str"),
        filter=dict(type="str"),
        last_sign_in_before=dict(type="str"),
        last_sign_in_after=dict(type="str"),
        select=dict(type="list", elements="str"),
        advanced_query=dict(type="bool", default=False),
        limit=dict(type="int"),
        api_version=dict(type="str", default="v1.0", choices=["v1.0", "beta"]),
        user=dict(type="str"),
    )
    spec.update(argument_spec(MSGRAPH_OPTIONS))
    module = AnsibleModule(argument_spec=spec, mutually_exclusive=[IDENTITY_FIELDS + ("filter",),
                                                                   IDENTITY_FIELDS + ("last_sign_in_before",),
                                                                   IDENTITY_FIELDS + ("last_sign_in_after",)],
                           supports_check_mode=True)
    run_module(module, GraphClient.from_params, run)


if __name__ == "__main__":
    main()
