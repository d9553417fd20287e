# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleetguard.devices.feishu_device_record_changes: an ansible-rulebook event source of Feishu device record changes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib
import os
import sys

DOCUMENTATION = r"""
---
short_description: Changes of Feishu / Lark device records, from a full list pass per poll
description:
  - Feishu has no delta API. Every O(interval) seconds the source lists every device record (100 a page, inside the
    list quota of 10 calls per second that it shares with the modules and inventory plugins of the same app on this
    controller) and compares each record's C(version) with the last complete pass; records whose version moved are
    compared field by field and give one event each, under the key C(fleetguard).
  - A record a complete pass no longer lists is C(removed). A pass in which a page failed (after the retries) emits
    no C(removed) event; a failed read is never a deletion. What it read still counts.
  - Delivery is at least once. With O(state_file), the version map and snapshot advance only after a pass's events
    are on the queue; a change made while the source was stopped is emitted after it starts again.
  - Bad arguments or refused credentials end the source at start-up, before any list call, with the modules'
    messages; other faults are retried and never end it.
  - "Event shape: C(fleetguard.directory) (V(feishu)), C(change) (V(added), V(updated), V(removed)), C(id) (the
    device_record_id), C(device) (the record's fields now, enums by name: C(device_status=untrusted)), C(changed)
    (fields whose value changed; never C(version)), C(previous) (their values before), C(observed_at)."
  - Pass secrets through the environment (E(FEISHU_APP_SECRET)), never as rulebook arguments, since ansible-rulebook
    prints a source's arguments at C(-vv).
options:
  interval:
    description: Seconds between passes; at least 30.
    type: int
    default: 60
  state_file:
    description:
      - File where the source keeps the version map and snapshot of the records (JSON, written atomically, mode 0600,
        no credential). Its folder must exist; a symbolic link is written through.
      - The state belongs to this source, its base_url, the O(app_id) and the compared fields; a state saved for
        another app, or for other fields, is not used (the source starts over). A file of the other source, or one
        that is damaged, is refused at start-up and never overwritten.
      - Without it the source starts from "now" on every start.
    type: path
  initial:
    description:
      - What the first pass (no state yet) emits. V(skip) sets the baseline silently; V(emit) emits every existing
        record as C(added).
    type: str
    choices: [skip, emit]
    default: skip
  properties:
    description: Record fields to compare; default (and an empty list) every field. A name given twice counts once.
    type: list
    elements: str
  app_id:
    description: As the modules' O(app_id) (E(FEISHU_APP_ID)).
    type: str
  app_secret:
    description: As the modules' O(app_secret) (E(FEISHU_APP_SECRET)). Use the environment.
    type: str
  tenant_access_token:
    description: As the modules' option (E(FEISHU_TENANT_ACCESS_TOKEN)); it cannot be renewed, so a long-running
      source should use O(app_id) and O(app_secret). When Feishu refuses it, the source ends.
    type: str
  base_url:
    description: As the modules' option (E(FEISHU_BASE_URL)).
    type: str
    default: https://open.feishu.cn
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
# Credentials from the environment (FEISHU_APP_ID, FEISHU_APP_SECRET).
- name: Device records that drift
  hosts: localhost
  sources:
    - fleetguard.devices.feishu_device_record_changes:
        interval: 60
        state_file: /var/lib/eda/feishu-records.json
  rules:
    - name: A record was trusted again
      condition: >-
        event.fleetguard.change == "updated" and "device_status" in event.fleetguard.changed
        and event.fleetguard.device.device_status == "trusted"
      action:
        debug:
"""


def _change_source():
    """ansible-rulebook runs this file by path: make the collection importable from where the file lies
    (.../ansible_collections/fleetguard/devices/extensions/eda/plugins/event_source/this.py)."""
    if not any(os.path.isdir(os.path.join(path, "ansible_collections", "fleetguard", "devices")) for path in sys.path):
        sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), *[os.pardir] * 7)))
    return importlib.import_module("ansible_collections.fleetguard.devices.plugins.plugin_utils.change_source")


async def main(queue, args):
    """Put one event per changed Feishu device record on `queue`, every `interval` seconds, until cancelled."""
    await _change_source().run_source(queue, args, "feishu_changes.FeishuDeviceRecordChanges")
