# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options that address Microsoft Graph devices, shared by the msgraph modules and inventory plugin."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Which device collection: the tenant's (v1.0) or a user's (beta).
    DOCUMENTATION = r"""
options:
  api_version:
    description:
      - Graph version. V(beta) with O(user) addresses the user-scoped device collection
        (C(/users/{user}/devices) or C(/me/devices)).
      - Microsoft stopped serving that collection on 2020-09-30; it is kept for tenants and tools that still expect
        it. Use the default V(v1.0) for everything else.
    type: str
    choices: [v1.0, beta]
    default: v1.0
  user:
    description:
      - Owner of the user-scoped device collection, with O(api_version=beta) only. C(me) (a delegated token only),
        a user object id, or a user principal name.
    type: str
"""

    # The three ways to name devices.
    IDENTITY = r"""
options:
  id:
    description:
      - Object ids (GUIDs) of the devices.
      - At most one of O(id), O(device_id) and O(display_name).
    type: list
    elements: str
  device_id:
    description:
      - Device ids (the C(deviceId) alternate key set at registration, a GUID) of the devices.
    type: list
    elements: str
  display_name:
    description:
      - Display names of the devices, matched exactly (case included).
    type: list
    elements: str
"""

    # A raw OData query over the device collection.
    QUERY = r"""
options:
  filter:
    description:
      - A raw OData C($filter) expression, for example C(operatingSystem eq 'Windows' and accountEnabled eq false).
      - It is sent as written, so quote string literals yourself and double any C(') inside them.
      - Filters on C(extensionAttributes), C(ne), C(not) and C(endsWith) need O(advanced_query=true).
      - Without it every device is read.
    type: str
  advanced_query:
    description:
      - Send C(ConsistencyLevel=eventual) and C($count=true), which Graph requires for advanced queries.
    type: bool
    default: false
  select:
    description:
      - Properties to read (C($select)), with Graph's names. The default is the set the modules of this collection
        read - C(id), C(deviceId), C(displayName), C(accountEnabled), C(operatingSystem), C(operatingSystemVersion),
        C(isCompliant), C(isManaged), C(trustType), C(profileType), C(manufacturer), C(model),
        C(registrationDateTime), C(approximateLastSignInDateTime), C(extensionAttributes).
    type: list
    elements: str
"""
