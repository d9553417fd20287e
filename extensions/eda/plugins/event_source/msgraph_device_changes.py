# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleetguard.devices.msgraph_device_changes: an ansible-rulebook event source of Microsoft Graph device changes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib
import os
import sys

DOCUMENTATION = r"""
---
short_description: Changes of Microsoft Graph (Entra) devices, from Graph's delta query
description:
  - Polls C(GET /devices/delta) (v1.0, or beta with O(api_version=beta)) every O(interval) seconds and puts one event
    per changed device on the rulebook's queue, under the key C(fleetguard).
  - The first round reads every device and sets the baseline; each later poll calls the saved C(@odata.deltaLink)
    once (and its C(@odata.nextLink) pages, when many devices changed). An idle poll is one call to Graph, plus a token
    call when the token is renewed.
  - A delta link Graph no longer knows (C(syncStateNotFound); links live 7 days) starts a full round, compared with
    the snapshot of the tracked properties; one C(change=resync) event announces it, then only real differences
    follow.
  - Delivery is at least once. With O(state_file), the source keeps its delta link and the snapshot there and
    advances them only after a round's events are on the queue; a change made while the source was stopped is
    emitted after it starts again.
  - Faults (429 with C(Retry-After), 5xx, resets, an expired token) are retried as the modules retry them; a round
    that still fails is read again at the next poll. Bad arguments or refused credentials end the source at start-up,
    before any delta call, with the modules' messages.
  - "Event shape: C(fleetguard.directory) (V(msgraph)), C(change) (V(added), V(updated), V(removed), V(resync)),
    C(id) (the object id), C(device) (the tracked properties now, plus C(id), C(deviceId), C(displayName)),
    C(changed) (tracked properties whose value changed), C(previous) (their values before), C(observed_at)."
  - Pass secrets through the environment (E(AZURE_CLIENT_SECRET) etc., as an EDA controller credential injects
    them), never as rulebook arguments, since ansible-rulebook prints a source's arguments at C(-vv).
options:
  interval:
    description: Seconds between polls; at least 5.
    type: int
    default: 60
  state_file:
    description:
      - File where the source keeps its delta link and the snapshot of the tracked properties (JSON, written
        atomically, mode 0600, no credential). Its folder must exist; a symbolic link is written through.
      - The state belongs to this source, its endpoint, the token's tenant and the tracked properties; a state of
        another tenant or properties is not used (the source starts over). A file of the other source, or one that is
        damaged, is refused at start-up and never overwritten.
      - Without it the source starts from "now" on every start.
    type: path
  initial:
    description:
      - What the first round (no state yet) emits. V(skip) sets the baseline silently; V(emit) emits every existing
        device as C(added).
    type: str
    choices: [skip, emit]
    default: skip
  properties:
    description:
      - Graph device properties to track. C(approximateLastSignInDateTime) only when asked for, since Graph moves it
        for every active device every two weeks.
      - Names are taken in any case and tracked as Graph spells them; a name that is not a property of Graph's device
        resource is refused at start-up. An empty list is the default.
    type: list
    elements: str
    default: [accountEnabled, isCompliant, isManaged, displayName, operatingSystem, trustType, extensionAttributes]
  api_version:
    description: Graph API version of the delta query.
    type: str
    choices: [v1.0, beta]
    default: v1.0
  tenant_id:
    description: As the modules' O(tenant_id) (E(AZURE_TENANT_ID), E(AZURE_TENANT)).
    type: str
  client_id:
    description: As the modules' O(client_id) (E(AZURE_CLIENT_ID)).
    type: str
  client_secret:
    description: As the modules' O(client_secret) (E(AZURE_CLIENT_SECRET), E(AZURE_SECRET)). Use the environment.
    type: str
  client_certificate_path:
    description: As the modules' option (E(AZURE_CLIENT_CERTIFICATE_PATH)).
    type: path
  client_certificate_password:
    description: As the modules' option (E(AZURE_CLIENT_CERTIFICATE_PASSWORD)). Use the environment.
    type: str
  federated_token_file:
    description: As the modules' option (E(AZURE_FEDERATED_TOKEN_FILE)).
    type: path
  access_token:
    description: As the modules' option (E(MSGRAPH_ACCESS_TOKEN)); it cannot be renewed, so a long-running source
      should use client credentials. When Graph refuses it, the source ends.
    type: str
  auth_source:
    description: As the modules' option (E(MSGRAPH_AUTH_SOURCE)).
    type: str
    default: auto
  tenant_size:
    description: As the modules' option (E(MSGRAPH_TENANT_SIZE)).
    type: str
    default: small
  cloud:
    description: As the modules' option (E(AZURE_CLOUD_ENVIRONMENT)).
    type: str
    default: global
  graph_endpoint:
    description: As the modules' option (E(MSGRAPH_ENDPOINT)).
    type: str
  authority_host:
    description: As the modules' option (E(AZURE_AUTHORITY_HOST)).
    type: str
  validate_certs:
    description: Verify TLS certificates.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for one answer.
    type: float
    default: 30
  max_retries:
    description: Retries of one request after a transient fault.
    type: int
    default: 5
"""

EXAMPLES = r"""
# Credentials from the environment (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET).
- name: Devices that drift
  hosts: localhost
  sources:
    - fleetguard.devices.msgraph_device_changes:
        interval: 30
        state_file: /var/lib/eda/msgraph-devices.json
  rules:
    - name: A quarantined device was enabled again
      condition: >-
        event.fleetguard.change == "updated" and "accountEnabled" in event.fleetguard.changed
        and event.fleetguard.device.accountEnabled == true
      action:
        run_playbook:
          name: fleetguard.devices.keep_quarantined
"""


def _change_source():
    """ansible-rulebook runs this file by path: make the collection importable from where the file lies
    (.../ansible_collections/fleetguard/devices/extensions/eda/plugins/event_source/this.py)."""
    if not any(os.path.isdir(os.path.join(path, "ansible_collections", "fleetguard", "devices")) for path in sys.path):
        sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), *[os.pardir] * 7)))
    return importlib.import_module("ansible_collections.fleetguard.devices.plugins.plugin_utils.change_source")


async def main(queue, args):
    """Put one event per changed Graph device on `queue`, every `interval` seconds, until cancelled."""
    await _change_source().run_source(queue, args, "msgraph_delta.GraphDeviceChanges")
