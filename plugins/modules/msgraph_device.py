#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: msgraph_device
short_description: Enable, disable, rename and tag Microsoft Entra devices through Microsoft Graph
version_added: 0.1.0
description:
  - Puts one or many Microsoft Entra (Azure AD) devices into the desired state through Microsoft Graph
    (C(PATCH /devices/{id}) or C(/devices(deviceId='...'))), or deletes them.
  - Exactly one of O(id), O(device_id) and O(display_name) is required. Every identifier is resolved before
    anything is written. A value that matches no device, or more than one, fails the task before any write,
    naming the value and the candidate ids.
  - With O(api_version=beta) and O(user), the user-scoped collection's C(PATCH) answers with the device and
    accepts the Project Rome properties O(name), O(manufacturer), O(model), O(kind), O(status) and O(platform).
  - Only the properties you set are compared, and C(PATCH) carries only those that differ.
    O(extension_attributes) are managed key by key; a key set to C(null) is cleared; keys you do not give are
    left alone.
  - Reads and writes of many devices go through JSON batching (C(POST /$batch), 20 requests per call). A
    throttled request inside a batch is retried after its own C(Retry-After).
  - Transient faults (HTTP 429, 5xx, connection resets, timeouts, an expired token) are retried with bounds.
    A write whose answer was lost is re-read until it shows, for up to three times O(timeout) (at least 30
    seconds), before it is sent again; Graph has no version to refuse a late write, so one sent again too early
    could land twice. A device whose last write never showed is reported V(uncertain) in RV(outcomes). When some
    devices still fail, the task fails and RV(outcomes) names every device's outcome; devices that succeeded
    stay done and a second run finishes the rest.
  - Graph lets application (app-only) callers change only C(extensionAttributes) of devices whose
    C(operatingSystem) is not C(Windows). Such a change of a device whose C(operatingSystem) names another
    system (C(iOS), C(Android), C(MacMDM), C(Linux)) fails the task before any write, naming each device and its
    operating system. Graph does not say which side of that rule a device with no C(operatingSystem), or with
    another spelling of Windows (C(Windows Server)), is on; check mode reports it V(uncertain) in RV(outcomes)
    with a warning, instead of promising the change, and does not fail for it; a real run sends it and reports
    Graph's answer.
author:
  - Fleetguard devices team (@fleetguard)
extends_documentation_fragment:
  - fleetguard.devices.msgraph
  - fleetguard.devices.attributes
  - fleetguard.devices.attributes.msgraph_group
  - fleetguard.devices.msgraph_devices
  - fleetguard.devices.msgraph_devices.identity
attributes:
  check_mode:
    support: full
    details: Reads as in a real run and sends no write; RV(devices) holds the predicted devices.
  diff_mode:
    support: full
    details: Shows the managed properties of each device that changes.
options:
  account_enabled:
    description:
      - Whether the device account is enabled. V(false) blocks sign-ins from the device.
    type: bool
  new_display_name:
    description:
      - Rename the device to this display name (at most 256 characters).
    type: str
  operating_system:
    description:
      - Operating system type of the device.
    type: str
  operating_system_version:
    description:
      - Operating system version of the device.
    type: str
  is_compliant:
    description:
      - Whether the device complies with MDM policies. Graph lets only Intune or an approved MDM app change it.
    type: bool
  is_managed:
    description:
      - Whether the device is managed by an MDM app. Graph lets only Intune or an approved MDM app change it.
    type: bool
  extension_attributes:
    description:
      - Extension attributes to set, C(extensionAttribute1) to C(extensionAttribute15), each a string of at most
        1024 characters, or C(null) to clear it. Only the keys given are managed.
      - An unknown key, a value that is not a string (V(true), a number, a list or a mapping), or a value over
        1024 characters fails the task before any request.
    type: dict
  name:
    description:
      - Project Rome device name. Only with O(api_version=beta) and O(user).
    type: str
  manufacturer:
    description:
      - Device manufacturer. Only with O(api_version=beta) and O(user).
    type: str
  model:
    description:
      - Device model. Only with O(api_version=beta) and O(user).
    type: str
  kind:
    description:
      - Form factor (for example C(Phone), C(Tablet)). Only with O(api_version=beta) and O(user).
    type: str
  status:
    description:
      - Device status (for example C(Online)). Only with O(api_version=beta) and O(user).
    type: str
  platform:
    description:
      - Platform (for example C(Windows)). Only with O(api_version=beta) and O(user).
    type: str
  state:
    description:
      - V(present) sets the properties given. V(absent) deletes the devices; a device already gone is not a change.
      - With V(absent), a value that matches no device is already absent and not an error.
    type: str
    choices: [present, absent]
    default: present
notes:
  - Graph limits device writes to 3,000 per 150 seconds per app and tenant, and to 25 per 10 seconds per user for
    delegated callers. The module paces its writes under those limits.
seealso:
  - module: fleetguard.devices.msgraph_device_info
  - name: Update device (Microsoft Graph v1.0)
    description: The API this module calls.
    link: https://learn.microsoft.com/en-us/graph/api/device-update?view=graph-rest-1.0
"""

EXAMPLES = r"""
- name: Disable two devices and tag them
  fleetguard.devices.msgraph_device:
    tenant_id: "{{ azure_tenant_id }}"
    client_id: "{{ azure_client_id }}"
    client_secret: "{{ azure_client_secret }}"
    display_name:
      - FG-WS-0001
      - FG-WS-0002
    account_enabled: false
    extension_attributes:
      extensionAttribute15: "quarantine:INC-1234"

- name: Clear the tag of a device found by its deviceId, in the US Government cloud
  fleetguard.devices.msgraph_device:
    cloud: usgov
    device_id: eab73519-780d-4d43-be6d-a4a89af2a348
    extension_attributes:
      extensionAttribute15: null

- name: Audit without writing
  fleetguard.devices.msgraph_device:
    id: "{{ fleet_object_ids }}"
    account_enabled: true
  check_mode: true
  diff: true
  register: audit

- name: Delete stale devices
  fleetguard.devices.msgraph_device:
    id: "{{ stale_object_ids }}"
    state: absent
"""

RETURN = r"""
devices:
  description:
    - One device per identifier, in the order given, as it is after the task (predicted in check mode), with the
      properties the module reads (C(id), C(deviceId), C(displayName), C(accountEnabled), C(operatingSystem),
      C(operatingSystemVersion), C(isCompliant), C(isManaged), C(trustType), C(extensionAttributes) and more).
    - A changed device is the one read before the write with the properties written applied, as Graph stores
      them (C(PATCH) merges exactly those and answers 204 without a body), so no read-back is spent on it; check
      mode predicts the same.
    - With O(state=absent) each entry is an empty dict.
  returned: always
  type: list
  elements: dict
  sample:
    - id: 6a59ea83-02bd-468f-a40b-f2c3d1821983
      deviceId: eab73519-780d-4d43-be6d-a4a89af2a348
      displayName: FG-WS-0001
      accountEnabled: false
      operatingSystem: Windows
      extensionAttributes:
        extensionAttribute15: "quarantine:INC-1234"
changed_devices:
  description:
    - Object ids of the devices that changed (or would change, in check mode).
    - With C(--diff), the entries of C(diff) follow this order, one per id.
  returned: always
  type: list
  elements: str
  sample: [6a59ea83-02bd-468f-a40b-f2c3d1821983]
outcomes:
  description: Every identifier with what happened to it, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    identifier:
      description: The value given in the task.
      type: str
    id:
      description: The object id it resolved to.
      type: str
    outcome:
      description: What happened.
      type: str
      choices: [changed, unchanged, failed, not_attempted, uncertain]
    reason:
      description: Why it failed (HTTP status, Graph error code and request id where known).
      type: str
      returned: when outcome is failed, not_attempted or uncertain
summary:
  description: Counts of RV(outcomes) by outcome.
  returned: always
  type: dict
  sample: {changed: 2, unchanged: 98, failed: 0, not_attempted: 0, uncertain: 0}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleetguard.devices.plugins.module_utils.device_task import run_device_task
from ansible_collections.fleetguard.devices.plugins.module_utils.errors import InputError
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_client import GraphClient
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_devices import GraphDevices
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_odata import DeviceAddress
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_properties import (
    BETA_PROPERTIES,
    IDENTITY_FIELDS,
    desired_properties,
)
from ansible_collections.fleetguard.devices.plugins.module_utils.module_runner import run_module
from ansible_collections.fleetguard.devices.plugins.module_utils.options import MSGRAPH_OPTIONS, argument_spec


def run(module, client):
    """Resolve every identifier, then bring the devices to the desired state in batches. Returns the module result."""
    params = module.params
    if params.get("user") is None:
        given = [option for option in BETA_PROPERTIES if params.get(option) is not None]
        if given:
            raise InputError("%s can only be set with api_version beta and user" % ", ".join(given))
    address = DeviceAddress(params["api_version"], params.get("user"))
    desired = desired_properties(params, params["api_version"])
    if params["state"] == "present" and not desired:
        raise InputError("nothing to set: give at least one property to manage, or state=absent")
    return run_device_task(module, GraphDevices(client, address), IDENTITY_FIELDS, desired,
                           objects_key="devices", changed_key="changed_devices")


def main():
    spec = dict(
        id=dict(type="list", elements="str"),
        device_id=dict(type="list", elements="str"),
        display_name=dict(type="list", elements="str"),
        account_enabled=dict(type="bool"),
        new_display_name=dict(type="str"),
        operating_system=dict(type="str"),
        operating_system_version=dict(type="str"),
        is_compliant=dict(type="bool"),
        is_managed=dict(type="bool"),
        extension_attributes=dict(type="dict"),
        name=dict(type="str"),
        manufacturer=dict(type="str"),
        model=dict(type="str"),
        kind=dict(type="str"),
        status=dict(type="str"),
        platform=dict(type="str"),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        api_version=dict(type="str", default="v1.0", choices=["v1.0", "beta"]),
        user=dict(type="str"),
    )
    spec.update(argument_spec(MSGRAPH_OPTIONS))
    module = AnsibleModule(
        argument_spec=spec,
        mutually_exclusive=[IDENTITY_FIELDS],
        required_one_of=[IDENTITY_FIELDS],
        supports_check_mode=True,
    )
    run_module(module, GraphClient.from_params, run)


if __name__ == "__main__":
    main()
