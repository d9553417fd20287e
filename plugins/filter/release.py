# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""release_refusals: the devices the role fleetguard.devices.release refuses to release, because they show no sign
of a quarantine (documented in release_refusals.yml)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible_collections.fleetguard.devices.plugins.module_utils.errors import shown_json
from ansible_collections.fleetguard.devices.plugins.module_utils.feishu_records import DEVICE_STATUS
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_properties import EXTENSION_ATTRIBUTES
from ansible_collections.fleetguard.devices.plugins.plugin_utils.identifiers import described, kind

# Feishu's device_status for a record never vetted, and the two a release accepts (released, or quarantined).
FEISHU_UNKNOWN = DEVICE_STATUS["unknown"]
FEISHU_VETTED = (DEVICE_STATUS["trusted"], DEVICE_STATUS["untrusted"])


def _read(result, key, label):
    """The objects (mappings) a registered info module result holds (none when the read was skipped or not run)."""
    if result is None:
        return []
    objects = result.get(key) if isinstance(result, Mapping) else None
    if not isinstance(result, Mapping) or not isinstance(objects, (list, tuple, type(None))):
        raise AnsibleFilterError("release_refusals: the %s must be a registered info module result with a list of %s,"
                                 " not %s" % (label, key, kind(objects if isinstance(result, Mapping) else result)))
    objects = list(objects or [])
    if not all(isinstance(one, Mapping) for one in objects):
        raise AnsibleFilterError("release_refusals: the %s must be a list of mappings, not of %s"
                                 % (label, ", ".join(sorted(set(kind(one) for one in objects if not isinstance(one, Mapping))))))
    return objects


def feishu_refusals(records):
    """Feishu records carry no tag: `untrusted` counts as quarantined, `trusted` as already released, and `unknown`
    (never vetted) is refused, since releasing it would raise its trust. Any other status (none, a name instead of
    the API's integer) shows nothing either way, and is refused too."""
    refusals = []
    for record in records:
        status = record.get("device_status")
        name = (record.get("device_record_id"), record.get("device_name", "no name"))
        if isinstance(status, bool) or status not in FEISHU_VETTED + (FEISHU_UNKNOWN,):
            refusals.append("Feishu record %s (%s) has device_status=%s, neither trusted (1) nor untrusted (2): it shows no"
                            " sign of a quarantine" % (name + (shown_json(status),)))
        elif status == FEISHU_UNKNOWN:
            refusals.append('Feishu record %s (%s) is "unknown", not untrusted: it shows no sign of a quarantine' % name)
    return refusals


def msgraph_refusals(devices, tag_attribute, tag_prefix, enable_accounts):
    """A Graph device carrying the tag is quarantined; an enabled device without a tag is already released;
    anything else (no tag but disabled, or another value in the attribute) is refused."""
    refusals = []
    for device in devices:
        attributes = device.get("extensionAttributes") or {}
        if not isinstance(attributes, Mapping):
            raise AnsibleFilterError("release_refusals: the Graph device %s has extensionAttributes of %s, not a mapping"
                                     % (device.get("id"), kind(attributes)))
        tag = attributes.get(tag_attribute)
        if isinstance(tag, str) and tag.startswith(tag_prefix):
            continue
        if tag:
            refusals.append("Graph device %s (%s) has %s=%s, not a quarantine tag"
                            % (device.get("id"), device.get("displayName"), tag_attribute, json.dumps(tag)))
        elif enable_accounts and not device.get("accountEnabled"):
            refusals.append("Graph device %s (%s) is disabled but carries no quarantine tag in %s"
                            % (device.get("id"), device.get("displayName"), tag_attribute))
    return refusals


def _settings(tag_attribute, tag_prefix, enable_accounts):
    """The release's settings, or the error that refuses one: an empty prefix would take any tag for a quarantine."""
    if tag_attribute not in EXTENSION_ATTRIBUTES:
        raise AnsibleFilterError("release_refusals: tag_attribute must be one of extensionAttribute1..extensionAttribute15,"
                                 " not %s" % described(tag_attribute))
    if not isinstance(tag_prefix, str) or not tag_prefix.strip():
        raise AnsibleFilterError("release_refusals: tag_prefix must be a non-empty string (every tag starts with an empty"
                                 " one), not %s" % described(tag_prefix))
    try:
        return boolean(enable_accounts, strict=True)
    except TypeError:
        raise AnsibleFilterError("release_refusals: enable_accounts must be a boolean, not %s" % described(enable_accounts))


def release_refusals(feishu_current, msgraph_current, tag_attribute, tag_prefix, enable_accounts=True):
    """Why each device that shows no sign of a quarantine is refused: Feishu records first, then Graph devices."""
    enable_accounts = _settings(tag_attribute, tag_prefix, enable_accounts)
    refusals = feishu_refusals(_read(feishu_current, "device_records", "Feishu records"))
    return refusals + msgraph_refusals(_read(msgraph_current, "devices", "Graph devices"), tag_attribute, tag_prefix, enable_accounts)


class FilterModule(object):
    """fleetguard.devices filter of the release role."""

    def filters(self):
        return {"release_refusals": release_refusals}
