#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: feishu_device_record
short_description: Set the trust status and ownership of Feishu/Lark device records
version_added: 0.1.0
description:
  - Puts one or many device records of Feishu/Lark security and compliance (device management) into the
    desired trust status and ownership, or deletes them.
  - Every identifier is resolved before anything is written. An identifier that matches no record, or more
    than one, fails the task before any write, naming the value and the candidate record ids.
  - Reads the current record, compares only the fields you set, and sends C(PUT device_records/:id?version=V)
    only when something differs. The API requires both fields in every update, so the field you did not set
    keeps its current value.
  - A stale C(version) (another writer changed the record between the read and the write) is re-read and the
    update recomputed and retried, at most three times; then the task fails naming the first and last version.
  - Transient faults (HTTP 429, 5xx, connection resets, timeouts, an expired token) are retried with bounds.
    A write whose answer was lost is re-read before it is retried, so no change is written twice.
    When some devices still fail, the task fails and RV(outcomes) names every device's outcome; devices that
    succeeded stay done and a second run finishes the rest.
author:
  - Fleetguard devices team (@fleetguard)
extends_documentation_fragment:
  - fleetguard.devices.feishu
  - fleetguard.devices.attributes
  - fleetguard.devices.attributes.feishu_group
attributes:
  check_mode:
    support: full
    details: Reads as in a real run and sends no write; RV(device_records) holds the predicted records.
  diff_mode:
    support: full
    details: Shows the managed fields by name (for example V(untrusted)), one entry per changed record.
options:
  device_record_id:
    description:
      - Device record ids (C(device_record_id), a string of digits) of the records to manage.
      - Exactly one of O(device_record_id), O(serial_number) and O(device_name) is required.
    type: list
    elements: str
  serial_number:
    description:
      - Hardware serial numbers of the records to manage; each must match exactly one record.
    type: list
    elements: str
  device_name:
    description:
      - Device names of the records to manage; each must match exactly one record.
    type: list
    elements: str
  device_status:
    description:
      - Desired trust status.
      - With O(state=present), at least one of O(device_status) and O(device_ownership) is required.
    type: str
    choices: [unknown, trusted, untrusted]
  device_ownership:
    description:
      - Desired ownership.
    type: str
    choices: [unknown, personal, company]
  state:
    description:
      - V(present) sets the fields given. V(absent) deletes the records; a record that is already gone is not a change.
      - With V(absent), an identifier that matches nothing is already absent and not an error; one that matches
        several records still fails the task.
    type: str
    choices: [present, absent]
    default: present
notes:
  - The update endpoint is limited to 10 calls per second per app and tenant; the module paces itself under
    that limit rather than provoking HTTP 429, so 1000 changed records take a little over 100 seconds.
  - Records are found with the list endpoint when that costs fewer calls than one lookup per identifier.
seealso:
  - module: fleetguard.devices.feishu_device_record_info
  - name: Update a device (Feishu Open Platform)
    description: The API this module calls.
    link: https://open.feishu.cn/document/security_and_compliance-v1/security_and_compliance-v2/device_record/update
"""

EXAMPLES = r"""
- name: Mark two laptops untrusted
  fleetguard.devices.feishu_device_record:
    app_id: "{{ feishu_app_id }}"
    app_secret: "{{ feishu_app_secret }}"
    serial_number:
      - C02FG0001
      - C02FG0002
    device_status: untrusted

- name: Trust a company device by its record id, credentials from module_defaults
  module_defaults:
    group/fleetguard.devices.feishu:
      app_id: "{{ feishu_app_id }}"
      app_secret: "{{ feishu_app_secret }}"
      base_url: https://open.larksuite.com
  block:
    - name: Trust it
      fleetguard.devices.feishu_device_record:
        device_record_id: "7400000000000000001"
        device_status: trusted
        device_ownership: company

- name: Remove stale records by device name
  fleetguard.devices.feishu_device_record:
    device_name: "{{ retired_devices }}"
    state: absent

- name: Audit without writing
  fleetguard.devices.feishu_device_record:
    device_name: "{{ fleet }}"
    device_status: trusted
  check_mode: true
  diff: true
  register: audit
"""

RETURN = r"""
device_records:
  description:
    - One record per identifier, in the order given, as it is after the task (predicted in check mode).
    - Enum fields are the API's integers (device_status 0 unknown, 1 trusted, 2 untrusted; device_ownership
      0 unknown, 1 personal, 2 company). With O(state=absent) each entry is an empty dict.
  returned: always
  type: list
  elements: dict
  sample:
    - device_record_id: "7400000000000000001"
      version: "3"
      device_name: FG-LAPTOP-0001
      serial_number: C02FG0001
      device_system: 2
      device_status: 2
      device_ownership: 2
changed_records:
  description:
    - Ids of the records that changed (or would change, in check mode).
    - With C(--diff), the entries of C(diff) follow this order, one per id.
  returned: always
  type: list
  elements: str
  sample: ["7400000000000000001"]
outcomes:
  description:
    - Every identifier with what happened to it, in the order given. On a partly failed run this tells which
      devices are done and which a second run still has to do.
  returned: always
  type: list
  elements: dict
  contains:
    identifier:
      description: The value given in the task.
      type: str
    device_record_id:
      description: The record it resolved to.
      type: str
    outcome:
      description: What happened.
      type: str
      sample: changed
      choices: [changed, unchanged, failed, not_attempted, uncertain]
    reason:
      description: Why it failed or was not attempted (HTTP status, Feishu code and log id where known).
      type: str
      returned: when outcome is failed, not_attempted or uncertain
summary:
  description: Counts of RV(outcomes) by outcome.
  returned: always
  type: dict
  sample: {changed: 2, unchanged: 48, failed: 0, not_attempted: 0, uncertain: 0}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleetguard.devices.plugins.module_utils.device_task import run_device_task
from ansible_collections.fleetguard.devices.plugins.module_utils.feishu_client import FeishuClient
from ansible_collections.fleetguard.devices.plugins.module_utils.feishu_records import (
    FeishuDeviceRecords,
    desired_state,
)
from ansible_collections.fleetguard.devices.plugins.module_utils.module_runner import run_module
from ansible_collections.fleetguard.devices.plugins.module_utils.options import FEISHU_OPTIONS, argument_spec

IDENTITY_FIELDS = ("device_record_id", "serial_number", "device_name")


def run(module, client):
    """Resolve every identifier, then bring each record to the desired state. Returns the module result."""
    desired = desired_state(module.params.get("device_status"), module.params.get("device_ownership"))
    return run_device_task(module, FeishuDeviceRecords(client), IDENTITY_FIELDS, desired,
                           objects_key="device_records", changed_key="changed_records")


def main():
    spec = dict(
        device_record_id=dict(type="list", elements="str"),
        serial_number=dict(type="list", elements="str"),
        device_name=dict(type="list", elements="str"),
        device_status=dict(type="str", choices=["unknown", "trusted", "untrusted"]),
        device_ownership=dict(type="str", choices=["unknown", "personal", "company"]),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )
    spec.update(argument_spec(FEISHU_OPTIONS))
    module = AnsibleModule(
        argument_spec=spec,
        mutually_exclusive=[IDENTITY_FIELDS],
        required_one_of=[IDENTITY_FIELDS],
        required_if=[("state", "present", ("device_status", "device_ownership"), True)],
        supports_check_mode=True,
    )
    run_module(module, FeishuClient.from_params, run)


if __name__ == "__main__":
    main()
