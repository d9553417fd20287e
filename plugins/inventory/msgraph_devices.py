# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: msgraph_devices
short_description: Microsoft Entra devices as inventory hosts, through Microsoft Graph
version_added: 0.1.0
description:
  - Reads the devices of a Microsoft Entra tenant (C(GET /v1.0/devices)), optionally narrowed by a raw OData
    C($filter), following C(@odata.nextLink) through every page, and makes each device a host.
  - A host is named after the property O(hostname), with every character other than letters, digits, C(.), C(_)
    and C(-) replaced by C(_) (C(Dana's iPhone) becomes C(Dana_s_iPhone)) so that C(--limit) and host patterns take
    it as is. A device without that property is named after its object id; a name that several devices share gets
    each device's object id appended.
  - A host is never named like a group, nor with a name ansible-core reserves (C(all), C(ungrouped), C(localhost),
    C(127.0.0.1), C(::1)); such a device's host gets its object id appended too (C(all_<object id>)), with a warning
    naming the device, so that it never takes the group's place in a host pattern and the group never gets the device's
    variables. Kept free are C(msgraph_devices), C(feishu_devices), the groups of the sources read before this one, the
    groups of O(groups), and those O(keyed_groups) makes. A device host of an earlier source (such as
    P(fleetguard.devices.feishu_device_records#inventory)) named like a group of this source is renamed the same way.
    Names are compared as ansible-core compares them, case-sensitively (C(ALL) names no group).
  - Every property read becomes a host variable named C(msgraph_) + the property name in snake_case, for example
    C(msgraph_id), C(msgraph_device_id), C(msgraph_display_name), C(msgraph_account_enabled),
    C(msgraph_operating_system), C(msgraph_is_compliant), C(msgraph_trust_type),
    C(msgraph_approximate_last_sign_in_date_time) and C(msgraph_extension_attributes) (a dict keyed
    C(extensionAttribute1) to C(extensionAttribute15), as M(fleetguard.devices.msgraph_device) takes it).
  - Every host is in the group C(msgraph_devices); O(keyed_groups), O(groups) and O(compose) add more.
  - Pass C(msgraph_id) to the O(fleetguard.devices.msgraph_device#module:id) option of
    M(fleetguard.devices.msgraph_device) to act on the host's device.
  - Source files must be named C(msgraph_devices.yml) or end in C(.msgraph_devices.yml) (or C(.yaml)).
author:
  - Fleetguard devices team (@fleetguard)
extends_documentation_fragment:
  - ansible.builtin.constructed
  - ansible.builtin.inventory_cache
  - fleetguard.devices.msgraph_inventory
  - fleetguard.devices.msgraph_devices.query
options:
  plugin:
    description: The name of this plugin; it marks the file as a source for it.
    required: true
    type: str
    choices: [fleetguard.devices.msgraph_devices]
  hostname:
    description:
      - The property hosts are named after.
    type: str
    default: displayName
    choices: [displayName, id, deviceId]
notes:
  - The inventory cache holds the devices and the query that read them (Graph endpoint, tenant, filter, properties),
    never a secret or a token. A cached source whose query changed is read again.
  - A device that also has a host from P(fleetguard.devices.feishu_device_records#inventory) under the same name
    becomes one host with both sets of variables.
seealso:
  - module: fleetguard.devices.msgraph_device
  - module: fleetguard.devices.msgraph_device_info
  - plugin: fleetguard.devices.feishu_device_records
    plugin_type: inventory
"""

EXAMPLES = r"""
# devices.msgraph_devices.yml; credentials from AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET
# (or AZURE_SECRET, as AWX's Microsoft Azure Resource Manager credential injects it)
plugin: fleetguard.devices.msgraph_devices
filter: "accountEnabled eq true"
keyed_groups:
  # msgraph_os_windows, msgraph_os_ios, ...
  - key: msgraph_operating_system | lower
    prefix: msgraph_os
  # msgraph_compliant_true / msgraph_compliant_false (group names must be strings)
  - key: msgraph_is_compliant | string | lower
    prefix: msgraph_compliant
groups:
  stale: msgraph_approximate_last_sign_in_date_time is not none and
    msgraph_approximate_last_sign_in_date_time < '2026-01-01'
compose:
  # The modules talk to Graph from the controller, not from the device.
  ansible_connection: "'local'"
  quarantine_tag: msgraph_extension_attributes.extensionAttribute15 | default('')
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/fleetguard-inventory

---
# Devices tagged by the quarantine role (an advanced query), named by object id
plugin: fleetguard.devices.msgraph_devices
filter: "startswith(extensionAttributes/extensionAttribute15, 'quarantine:')"
advanced_query: true
select: [displayName, operatingSystem, extensionAttributes]
hostname: id
"""

import re

from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_client import GraphClient
from ansible_collections.fleetguard.devices.plugins.module_utils.entra_authority import cloud_hosts
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_devices import GraphDevices
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_odata import DeviceAddress
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_properties import READ_PROPERTIES
from ansible_collections.fleetguard.devices.plugins.module_utils.options import MSGRAPH_OPTIONS
from ansible_collections.fleetguard.devices.plugins.plugin_utils.device_inventory import DeviceInventory

HOST_VARS_PREFIX = "msgraph_"
# Hosts are named by one of these and playbooks pass them to the modules: always read them.
ALWAYS_SELECTED = ("id", "deviceId")
CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])([A-Z])")


def snake_case(name):
    """Graph's camelCase property name in snake_case: approximateLastSignInDateTime -> approximate_last_sign_in_date_time."""
    return CAMEL_HUMP.sub(r"_\1", name).lower()


def device_host_vars(device):
    """The host variables of one device: `msgraph_` + snake_case property name; OData annotations left out."""
    return dict((HOST_VARS_PREFIX + snake_case(name), value) for name, value in device.items()
                if not name.startswith("@"))


class InventoryModule(DeviceInventory):

    NAME = "fleetguard.devices.msgraph_devices"
    SOURCE_NAME = "msgraph_devices"
    DEVICES_GROUP = "msgraph_devices"
    ID_FIELD = "id"

    def query(self):
        select = list(self.get_option("select") or READ_PROPERTIES)
        for prop in ALWAYS_SELECTED + (self.get_option("hostname"),):
            if prop not in select:
                select.append(prop)
        endpoint = self.get_option("graph_endpoint") or cloud_hosts(self.get_option("cloud"))[0]
        return dict(graph_endpoint=endpoint, tenant_id=self.get_option("tenant_id"), filter=self.get_option("filter"),
                    advanced_query=self.get_option("advanced_query"), select=select)

    def fetch(self, query):
        client = GraphClient.from_params(self.connection_params(MSGRAPH_OPTIONS), api_version="v1.0")
        devices = GraphDevices(client, DeviceAddress("v1.0", select=query["select"]))
        return list(devices.iter_matching(query["filter"], query["advanced_query"]))

    def host_vars(self, device):
        return device_host_vars(device)
