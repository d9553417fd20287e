#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: feishu_device_record_info
short_description: Read Feishu/Lark device records
version_added: 0.1.0
description:
  - Returns device records of Feishu/Lark security and compliance (device management), by id or through the
    list endpoint with any of its filters, following every page.
  - Never changes anything.
author:
  - Fleetguard devices team (@fleetguard)
extends_documentation_fragment:
  - fleetguard.devices.feishu
  - fleetguard.devices.attributes.info_module
  - fleetguard.devices.attributes.feishu_group
  - fleetguard.devices.feishu_device_records
options:
  device_record_id:
    description:
      - Ids of the records to read. A record that does not exist is left out of RV(device_records) and named in
        RV(missing). Cannot be combined with O(filters).
    type: list
    elements: str
  limit:
    description:
      - Stop after this many records. Without it every page is read.
    type: int
seealso:
  - module: fleetguard.devices.feishu_device_record
"""

EXAMPLES = r"""
- name: All untrusted company desktops
  fleetguard.devices.feishu_device_record_info:
    filters:
      device_status: untrusted
      device_ownership: company
      device_terminal_type: desktop
  register: untrusted

- name: Two records by id
  fleetguard.devices.feishu_device_record_info:
    device_record_id:
      - "7400000000000000001"
      - "7400000000000000002"
  register: found
"""

RETURN = r"""
device_records:
  description: The records found, with the API's field names and integer enums.
  returned: always
  type: list
  elements: dict
  sample:
    - device_record_id: "7400000000000000001"
      version: "0"
      device_name: FG-LAPTOP-0001
      serial_number: C02FG0001
      device_system: 2
      device_status: 1
      device_ownership: 2
missing:
  description: Values of O(device_record_id) that matched no record.
  returned: always
  type: list
  elements: str
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import InputError
from ansible_collections.fleetguard.devices.plugins.module_utils.feishu_client import FeishuClient, check_device_record_id
from ansible_collections.fleetguard.devices.plugins.module_utils.feishu_filters import list_filters
from ansible_collections.fleetguard.devices.plugins.module_utils.feishu_records import FeishuDeviceRecords
from ansible_collections.fleetguard.devices.plugins.module_utils.module_runner import run_module
from ansible_collections.fleetguard.devices.plugins.module_utils.options import FEISHU_OPTIONS, argument_spec


def run(module, client):
    params = module.params
    limit = params.get("limit")
    if limit is not None and limit < 1:
        raise InputError("limit must be at least 1, not %d" % limit)
    directory = FeishuDeviceRecords(client)
    records, missing = [], []
    if params.get("device_record_id") is not None:
        record_ids = params["device_record_id"]
        for record_id in record_ids:
            check_device_record_id(record_id)
        found = directory.read(record_ids)
        for record_id in record_ids:
            if found[record_id] is None:
                missing.append(record_id)
            else:
                records.append(found[record_id])
    else:
        records = list(directory.iter_matching(list_filters(params.get("filters")), limit=limit))
    if limit:
        records = records[:limit]
    return dict(changed=False, device_records=records, missing=missing)


def main():
    spec = dict(
        device_record_id=dict(type="list", elements="str"),
        filters=dict(type="dict"),
        limit=dict(type="int"),
    )
    spec.update(argument_spec(FEISHU_OPTIONS))
    module = AnsibleModule(argument_spec=spec, mutually_exclusive=[("device_record_id", "filters")],
                           supports_check_mode=True)
    run_module(module, FeishuClient.from_params, run)


if __name__ == "__main__":
    main()
