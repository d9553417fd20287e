# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""release_refusals: the devices the role fleetguard.devices.release refuses to release, because they show no sign
of a quarantine (documented in release_refusals.yml)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from collections.abc import Mapping

# Feishu's device_status for a record never vetted.
FEISHU_UNKNOWN = 0


def _read(result, key):
    """The objects a registered info module result holds (none when the read was skipped)."""
    return list(result.get(key) or []) if isinstance(result, Mapping) else []


def feishu_refusals(records):
    """Feishu records carry no tag: `untrusted` counts as quarantined, `trusted` as already released, and `unknown`
    (never vetted) is refused, since releasing it would raise its trust."""
    return ['Feishu record %s (%s) is "unknown", not untrusted: it shows no sign of a quarantine'
            % (record.get("device_record_id"), record.get("device_name", "no name"))
            for record in records if record.get("device_status") == FEISHU_UNKNOWN]


def msgraph_refusals(devices, tag_attribute, tag_prefix, enable_accounts):
    """A Graph device carrying the tag is quarantined; an enabled device without a tag is already released;
    anything else (no tag but disabled, or another value in the attribute) is refused."""
    refusals = []
    for device in devices:
        tag = (device.get("extensionAttributes") or {}).get(tag_attribute)
        if isinstance(tag, str) and tag.startswith(tag_prefix):
            continue
        if tag:
            refusals.append("Graph device %s (%s) has %s=%s, not a quarantine tag"
                            % (device.get("id"), device.get("displayName"), tag_attribute, json.dumps(tag)))
        elif enable_accounts and not device.get("accountEnabled"):
            refusals.append("Graph device %s (%s) is disabled but carries no quarantine tag in %s"
                            % (device.get("id"), device.get("displayName"), tag_attribute))
    return refusals


def release_refusals(feishu_current, msgraph_current, tag_attribute, tag_prefix, enable_accounts=True):
    """Why each device that shows no sign of a quarantine is refused: Feishu records first, then Graph devices."""
    refusals = feishu_refusals(_read(feishu_current, "device_records"))
    return refusals + msgraph_refusals(_read(msgraph_current, "devices"), tag_attribute, tag_prefix, bool(enable_accounts))


class FilterModule(object):
    """fleetguard.devices filter of the release role."""

    def filters(self):
        return {"release_refusals": release_refusals}
