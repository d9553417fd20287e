# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: feishu_device_records
short_description: Feishu/Lark device records as inventory hosts
version_added: 0.1.0
description:
  - Reads the device records of Feishu/Lark security and compliance (device management) through the list endpoint,
    with any of its filters, following every page, and makes each record a host.
  - A host is named after O(hostname), with every character other than letters, digits, C(.), C(_) and C(-)
    replaced by C(_) so that C(--limit) and host patterns take it as is. A record without that field is named
    after its id; a name that several records share gets each record's id appended (C(FG-LAPTOP-0001_7400000000000000001)).
  - A host is never named like a group, nor with a name ansible-core reserves (C(all), C(ungrouped), C(localhost),
    C(127.0.0.1), C(::1)); such a record's host gets its id appended too (C(all_7400000000000000001)), with a warning
    naming the record, so that it never takes the group's place in a host pattern and the group never gets the record's
    variables. Kept free are C(feishu_devices), C(msgraph_devices), the groups of the sources read before this one, the
    groups of O(groups), and those O(keyed_groups) makes. A device host of an earlier source (such as
    P(fleetguard.devices.msgraph_devices#inventory)) named like a group of this source is renamed the same way. Names are
    compared as ansible-core compares them, case-sensitively (C(ALL) names no group).
  - Every field of the record becomes a host variable named C(feishu_) + the field name, for example
    C(feishu_device_record_id), C(feishu_serial_number), C(feishu_version), C(feishu_current_user_id).
    Enum fields hold names, as the modules take them - C(feishu_device_status) (V(unknown), V(trusted),
    V(untrusted)), C(feishu_device_ownership) (V(unknown), V(personal), V(company)), C(feishu_device_terminal_type)
    (V(unknown), V(mobile), V(desktop)) and C(feishu_device_system) (V(unknown), V(windows), V(macos), V(linux),
    V(android), V(ios), V(openharmony)). Fields the API leaves out when they are zero or false are filled in.
  - Every host is in the group C(feishu_devices); O(keyed_groups), O(groups) and O(compose) add more.
  - Pass C(feishu_device_record_id) to M(fleetguard.devices.feishu_device_record) to act on the host's record.
  - Source files must be named C(feishu_device_records.yml) or end in C(.feishu_device_records.yml) (or C(.yaml)).
author:
  - Fleetguard devices team (@fleetguard)
extends_documentation_fragment:
  - ansible.builtin.constructed
  - ansible.builtin.inventory_cache
  - fleetguard.devices.feishu_inventory
  - fleetguard.devices.feishu_device_records
options:
  plugin:
    description: The name of this plugin; it marks the file as a source for it.
    required: true
    type: str
    choices: [fleetguard.devices.feishu_device_records]
  hostname:
    description:
      - The record field hosts are named after.
    type: str
    default: device_name
    choices: [device_name, serial_number, device_record_id]
notes:
  - The inventory cache holds the records and the query that read them (base URL, app id, filters), never a secret.
    A cached source whose filters changed is read again.
  - A device that also has a host from P(fleetguard.devices.msgraph_devices#inventory) under the same name becomes
    one host with both sets of variables.
seealso:
  - module: fleetguard.devices.feishu_device_record
  - module: fleetguard.devices.feishu_device_record_info
  - plugin: fleetguard.devices.msgraph_devices
    plugin_type: inventory
"""

EXAMPLES = r"""
# devices.feishu_device_records.yml; credentials from FEISHU_APP_ID and FEISHU_APP_SECRET
plugin: fleetguard.devices.feishu_device_records
filters:
  device_terminal_type: desktop
keyed_groups:
  # feishu_status_trusted, feishu_status_untrusted, feishu_status_unknown
  - key: feishu_device_status
    prefix: feishu_status
  # feishu_os_windows, feishu_os_macos, ...
  - key: feishu_device_system
    prefix: feishu_os
groups:
  company_untrusted: feishu_device_ownership == 'company' and feishu_device_status == 'untrusted'
compose:
  # The modules talk to the API from the controller, not from the device.
  ansible_connection: "'local'"
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/fleetguard-inventory
cache_timeout: 900

---
# Lark, one status only, hosts named by serial number; the secret in the file, vaulted
# (ansible-vault encrypt_string --name app_secret)
plugin: fleetguard.devices.feishu_device_records
base_url: https://open.larksuite.com
app_id: cli_a1b2c3d4e5f6
app_secret: !vault |
  $ANSIBLE_VAULT;1.1;AES256
  64346162643030653732343764363164313339656135626362343935653861653435303533643531
  3835373330626233636438633562353861306231353661650a383631376637613663336261376161
  37353966653435366466333465396237663366373230393766313036373330356238306638653662
  3231386362326364300a323037373262663038653563656435383733363565333931356339313236
  6331
hostname: serial_number
filters:
  device_status: untrusted
  is_managed: false
"""

from ansible_collections.fleetguard.devices.plugins.module_utils.feishu_client import FeishuClient
from ansible_collections.fleetguard.devices.plugins.module_utils.feishu_filters import list_filters
from ansible_collections.fleetguard.devices.plugins.module_utils.feishu_records import FeishuDeviceRecords, enum_names
from ansible_collections.fleetguard.devices.plugins.module_utils.options import FEISHU_OPTIONS
from ansible_collections.fleetguard.devices.plugins.plugin_utils.device_inventory import DeviceInventory

HOST_VARS_PREFIX = "feishu_"
# The API leaves out fields that are zero or false (Go omitempty): give every host the same variables.
OMITTED_WHEN_EMPTY = dict(device_status=0, device_ownership=0, device_terminal_type=0, device_system=0,
                          certification_level=0, source=0, is_managed=False, is_public=False, version="0")


def record_host_vars(record):
    """The host variables of one record: `feishu_` + field name, enum fields by name."""
    full = dict(OMITTED_WHEN_EMPTY)
    full.update(record)
    return dict((HOST_VARS_PREFIX + field, value) for field, value in enum_names(full).items())


class InventoryModule(DeviceInventory):

    NAME = "fleetguard.devices.feishu_device_records"
    SOURCE_NAME = "feishu_device_records"
    DEVICES_GROUP = "feishu_devices"
    ID_FIELD = "device_record_id"

    def query(self):
        return dict(base_url=self.get_option("base_url"), app_id=self.get_option("app_id"),
                    filters=list_filters(self.get_option("filters")))

    def fetch(self, query):
        client = FeishuClient.from_params(self.connection_params(FEISHU_OPTIONS))
        return list(FeishuDeviceRecords(client).iter_matching(query["filters"]))

    def host_vars(self, device):
        return record_host_vars(device)
