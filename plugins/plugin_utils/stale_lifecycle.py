# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""The stale device lifecycle, device by device (the filter stale_devices_plan): the action for one device, and
why: disable and tag, delete after the grace period, re-enable one that came back, or leave it as it is."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import shown
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_properties import NOT_WINDOWS, WINDOWS, windows_class
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_odata import datetime_offset
from ansible_collections.fleetguard.devices.plugins.plugin_utils.stale_settings import DAY, fail, midnight, parse_day

# The order of the report, and which mode writes each action.
ACTIONS = ("delete", "disable", "reenable", "came_back", "grace", "keep", "blocked", "already_disabled",
           "never_signed_in", "excluded")
WRITTEN_BY = {"disable": ("disable",), "reenable": ("disable", "delete"), "delete": ("delete",)}
# Windows Autopilot devices carry a [ZTDID] physical id; Microsoft: "Don't delete system-managed devices ...
# once deleted, these devices can't be reprovisioned".
AUTOPILOT_ID = "[ZTDID]"
# The rule behind `refusal` (https://learn.microsoft.com/en-us/graph/api/device-update).
APP_ONLY_RULE = "Graph lets an app-only caller (application credentials) change only extension attributes of non-Windows devices"


def last_sign_in(device):
    """The device's approximateLastSignInDateTime, to the second (None: never signed in)."""
    text = device.get("approximateLastSignInDateTime")
    try:
        moment = datetime_offset(text)
    except ValueError as exc:
        fail("stale_devices_plan: device %s has approximateLastSignInDateTime %s, which is no time (%s); nothing"
             " was written" % (device.get("id"), shown(text), exc))
    return None if moment is None else moment.replace(microsecond=0)


def probe(rows):
    """A non-Windows device whose accountEnabled the lifecycle would change, to learn (in check mode) whether this
    caller may: Graph lets an app-only caller change only extensionAttributes of non-Windows devices. Only a device
    the rule documents as non-Windows tells: for "Windows Server" check mode cannot say either way."""
    for row in rows:
        if windows_class(row["operatingSystem"]) != NOT_WINDOWS or row["action"] not in ("disable", "reenable"):
            continue
        if row["action"] == "disable" or row["accountEnabled"] is False:
            return {"id": row["id"], "account_enabled": row["action"] == "reenable"}
    return None


def windows(row):
    """Whether Graph's app-only rule documents the device as Windows (the module's rule, windows_class): a
    device it does not place ("Windows Server", no operatingSystem) is probed and blocked like a non-Windows one."""
    return windows_class(row["operatingSystem"]) == WINDOWS


class _Device:
    """One device as the lifecycle sees it: its row of the plan, its sign-in and its tag."""

    def __init__(self, device, settings, as_of):
        self.settings = settings
        self.as_of = as_of
        self.attribute = settings["tag_attribute"]
        tag_value = (device.get("extensionAttributes") or {}).get(self.attribute)
        self.last_sign_in = last_sign_in(device)
        self.age = None if self.last_sign_in is None else max(0, (midnight(as_of) - self.last_sign_in).days)
        self.tagged = isinstance(tag_value, str) and tag_value.lower().startswith(settings["tag_prefix"].lower())
        self.tag_date = parse_day(tag_value[len(settings["tag_prefix"]):]) if self.tagged else None
        self.stale_by_age = self.age is not None and self.age >= settings["inactive_days"]
        self.idle = ("has not signed in for %d days (last %s)" % (self.age, self.last_sign_in.date().isoformat())
                     if self.age is not None else "has no sign-in time")
        self.row = {
            "id": device.get("id"),
            "deviceId": device.get("deviceId"),
            "displayName": device.get("displayName"),
            "operatingSystem": device.get("operatingSystem"),
            "trustType": device.get("trustType"),
            "accountEnabled": device.get("accountEnabled"),
            "approximateLastSignInDateTime": device.get("approximateLastSignInDateTime"),
            "age_days": self.age,
            "tag": tag_value,
            "tag_date": self.tag_date.isoformat() if self.tag_date else None,
            "action": None,
            "reason": None,
        }

    def decide(self, action, reason):
        self.row["action"], self.row["reason"] = action, reason
        return self.row


def row(device, settings, as_of, refusal):
    """The plan's row of one device: what it is, the action the lifecycle takes for it, and why."""
    seen = _Device(device, settings, as_of)
    excluded = _exclusion(device, settings)
    if excluded:
        return seen.decide("excluded", excluded + (" (it carries %s=%s; the role leaves it as it is)"
                                                   % (seen.attribute, seen.row["tag"]) if seen.tagged else ""))
    if any(AUTOPILOT_ID in str(physical_id) for physical_id in device.get("physicalIds") or []):
        return seen.decide("excluded", "a Windows Autopilot device (its physicalIds hold a ZTDID): Microsoft says never"
                                       " to delete these, they cannot be provisioned again")
    if seen.tagged:
        return _tagged(seen, refusal)
    return _untagged(seen, refusal)


def _untagged(seen, refusal):
    settings, row = seen.settings, seen.row
    if seen.last_sign_in is None and not settings["include_never_signed_in"]:
        return seen.decide("never_signed_in", "no sign-in time (Graph: unknown, not old); set"
                                              " stale_devices_include_never_signed_in=true to treat it as stale")
    if not seen.stale_by_age and seen.last_sign_in is not None:
        return seen.decide("keep", "signed in %d days ago (last %s), within stale_devices_inactive_days=%d"
                           % (seen.age, seen.last_sign_in.date().isoformat(), settings["inactive_days"]))
    why = ("never signed in, and stale_devices_include_never_signed_in is true" if seen.last_sign_in is None
           else "%s, at least stale_devices_inactive_days=%d" % (seen.idle, settings["inactive_days"]))
    if row["accountEnabled"] is False:
        return seen.decide("already_disabled", "%s; already disabled by someone else, without the tag: reported, not"
                                               " written (it will never be deleted by this role)" % why)
    if row["tag"] not in (None, ""):
        return seen.decide("blocked", "%s; but %s already holds %s, which the role does not overwrite (choose another"
                                      " stale_devices_tag_attribute, or clear it)" % (why, seen.attribute, shown(row["tag"])))
    if refusal and not windows(row):
        return seen.decide("blocked", "%s; but %s (disable it as a delegated administrator, or leave %s out with"
                                      " stale_devices_operating_systems)" % (why, APP_ONLY_RULE, row["operatingSystem"]))
    return seen.decide("disable", "%s: disable it and tag it %s=%s" % (why, seen.attribute, settings["tag"]))


def _tagged(seen, refusal):
    settings, row, tag_date, as_of = seen.settings, seen.row, seen.tag_date, seen.as_of
    if tag_date is None:
        return seen.decide("keep", "%s holds %s, which carries no valid date: not deleted (fix or clear the tag)"
                           % (seen.attribute, shown(row["tag"])))
    if tag_date > as_of:
        return seen.decide("keep", "tagged on %s, after the run's date %s: not deleted" % (tag_date, as_of))
    if seen.last_sign_in is not None and seen.last_sign_in >= midnight(tag_date):
        return _came_back(seen, refusal)
    if row["accountEnabled"] is not False:
        return seen.decide("keep", "tagged on %s but enabled again since (by someone else), with no sign-in since: not"
                                   " deleted; clear the tag, or disable it again" % tag_date)
    if seen.last_sign_in is None and not settings["include_never_signed_in"]:
        return seen.decide("never_signed_in", "tagged on %s, but it has no sign-in time and"
                                              " stale_devices_include_never_signed_in is false: not deleted" % tag_date)
    if seen.last_sign_in is not None and not seen.stale_by_age:
        return seen.decide("keep", "tagged on %s, but with stale_devices_inactive_days=%d it is not stale (%s): not"
                                   " deleted" % (tag_date, settings["inactive_days"], seen.idle))
    waited = (as_of - tag_date).days
    if waited < settings["grace_days"]:
        due = tag_date + settings["grace_days"] * DAY
        return seen.decide("grace", "disabled and tagged on %s, no sign-in since; deletion due on %s (%d of %d grace"
                                    " days passed)" % (tag_date, due, waited, settings["grace_days"]))
    return seen.decide("delete", "disabled and tagged on %s (%d days ago, grace %d days), no sign-in since: delete it"
                       % (tag_date, waited, settings["grace_days"]))


def _came_back(seen, refusal):
    came_back = "signed in on %s, after it was disabled and tagged on %s" % (seen.last_sign_in.date(), seen.tag_date)
    if not seen.settings["reenable_returned"]:
        return seen.decide("came_back", came_back + ": not deleted, not re-enabled (clear the tag and enable it, or set"
                                                    " stale_devices_reenable_returned=true)")
    if refusal and seen.row["accountEnabled"] is False and not windows(seen.row):
        return seen.decide("blocked", "%s; but %s (enable it as a delegated administrator)" % (came_back, APP_ONLY_RULE))
    return seen.decide("reenable", came_back + ": enable it and clear the tag (stale_devices_reenable_returned)")


def _exclusion(device, settings):
    """Why the device is excluded, or None."""
    wanted = [value.lower() for value in settings["exclude"]]
    for key, label in (("id", "object id"), ("deviceId", "deviceId"), ("displayName", "display name")):
        value = device.get(key)
        if isinstance(value, str) and value.lower() in wanted:
            return "listed in stale_devices_exclude (its %s)" % label
    attributes = device.get("extensionAttributes") or {}
    for attribute, values in settings["exclude_extension_attributes"].items():
        value = attributes.get(attribute)
        if isinstance(value, str) and value.strip().lower() in [item.lower() for item in values]:
            return "%s is %s (stale_devices_exclude_extension_attributes)" % (attribute, shown(value))
    return None
