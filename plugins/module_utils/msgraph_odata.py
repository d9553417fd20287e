# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""How Graph devices are addressed and queried: a device's URL in the tenant-wide or a user's collection,
OData literals and query strings, and the sign-in-time `$filter`.

Every value that reaches a URL is checked (GUIDs, user names) or quoted (string literals, path segments),
and datetimes are rebuilt from the parsed value, so no input can change a path or a filter.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re
from urllib.parse import quote

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import InputError, shown
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_properties import BETA_READ_PROPERTIES, READ_PROPERTIES
from ansible_collections.fleetguard.devices.plugins.module_utils.transport import path_segment

GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
UPN = re.compile(r"[^\s/\\?#%]+@[^\s/\\?#%]+")
# The largest $top Graph accepts for devices.
PAGE_MAX = 999
UTC = datetime.timezone.utc


def odata_string(value):
    """An OData string literal: single quotes doubled, so a value can never end the literal."""
    return "'%s'" % value.replace("'", "''")


def query_string(options):
    """`?$select=…&$filter=…` with every value percent-encoded (spaces as %20, as OData expects)."""
    parts = ["%s=%s" % (key, quote(str(value), safe="(),'$")) for key, value in options if value is not None]
    return "?" + "&".join(parts) if parts else ""


def check_guid(option, value):
    if not isinstance(value, str) or not GUID.fullmatch(value):
        raise InputError("%s %s is not a GUID; Microsoft Graph device ids and deviceIds are GUIDs" % (option, shown(value)))
    return value


def guid_key(value):
    """An id or deviceId as Graph compares it: GUIDs are case-blind, so 6A59EA83-… and 6a59ea83-… are one device."""
    text = str(value).strip()
    return text.lower() if GUID.fullmatch(text) else text


def check_user(value):
    if value == "me" or (isinstance(value, str) and (GUID.fullmatch(value) or UPN.fullmatch(value))):
        return value
    raise InputError("user %s must be 'me', a user object id (GUID) or a user principal name (UPN)" % shown(value))


# --- sign-in time bounds (msgraph_device_info last_sign_in_before / last_sign_in_after) -------------
_DAYS_AGO = re.compile(r"([0-9]{1,5})d")
_DATE_ONLY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})?")


def sign_in_filter(before=None, after=None, now=None):
    """The `$filter` clause for devices whose approximateLastSignInDateTime is at or before `before` (`le`)
    and at or after `after` (`ge`), or None when neither is given.

    Each bound is a date (`2025-07-01`: 00:00 UTC that day), a date and time (ISO 8601, UTC when it has no
    offset) or a number of days before `now` (`90d`). The literal sent is rebuilt from the parsed time, never
    copied from the input, and is an unquoted DateTimeOffset (a quoted one is a string to Graph, and refused).
    Devices that never signed in (null) match neither bound. A bad value raises InputError naming it.
    """
    now = now or datetime.datetime.now(UTC)
    bounds = []
    for option, value, operator in (("last_sign_in_after", after, "ge"), ("last_sign_in_before", before, "le")):
        if value is not None:
            bounds.append((option, value, operator, _sign_in_bound(option, value, now)))
    if len(bounds) == 2 and bounds[0][3] > bounds[1][3]:
        raise InputError("last_sign_in_after %s (%s) is later than last_sign_in_before %s (%s): no device can match"
                         % (shown(after), odata_datetime(bounds[0][3]), shown(before), odata_datetime(bounds[1][3])))
    clauses = ["approximateLastSignInDateTime %s %s" % (operator, odata_datetime(moment))
               for dummy_option, dummy_value, operator, moment in bounds]
    return " and ".join(clauses) or None


# An ISO 8601 date and time: Graph's DateTimeOffset (2026-08-30T13:05:00Z, up to 7 fraction digits) or a user's
# bound (seconds optional; no offset means UTC).
DATE_TIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]+))?)?"
                       r"(?:Z|([+-])([0-9]{2}):([0-9]{2}))?\Z")


def datetime_offset(text):
    """An ISO 8601 date and time as an aware datetime in UTC (a fraction kept to the microsecond), or None when
    `text` is not of that shape. One of that shape that is no time (month 13, an offset of a day or more, a moment
    before year 1) raises ValueError. The one reading of times for the sign-in bounds and the stale_devices filters."""
    match = DATE_TIME.match(text) if isinstance(text, str) else None
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, sign, zone_hours, zone_minutes = match.groups()
    moment = datetime.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0),
                               int((fraction or "")[:6].ljust(6, "0")), tzinfo=UTC)
    if sign:
        if int(zone_hours) > 23 or int(zone_minutes) > 59:
            raise ValueError("its offset is no offset")
        try:
            moment -= (1 if sign == "+" else -1) * datetime.timedelta(hours=int(zone_hours), minutes=int(zone_minutes))
        except OverflowError:
            raise ValueError("it lies outside the calendar")
    return moment


def odata_datetime(moment):
    """An aware datetime as an OData DateTimeOffset literal in UTC: 2025-07-01T00:00:00Z."""
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return text + (".%06d" % moment.microsecond if moment.microsecond else "") + "Z"


def _sign_in_bound(option, value, now):
    text = value.strip() if isinstance(value, str) else None
    try:
        if text and _DAYS_AGO.fullmatch(text):
            return now - datetime.timedelta(days=int(text[:-1]))
        if text and _DATE_ONLY.fullmatch(text):
            return datetime.datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
        if text and _DATE_TIME.fullmatch(text):
            return datetime_offset(text)
    except (ValueError, OverflowError):
        pass  # 2025-02-30, 99999d before year 1: said below
    raise InputError("%s %s is not a date (2025-07-01), a date and time (2025-07-01T08:30:00Z) or a number of days"
                     " ago (90d)" % (option, shown(value)))


class DeviceAddress:
    """Where a device lives: the tenant-wide collection, or a user's (beta) collection; and what a read asks for
    (`select`: the properties to read, by default READ_PROPERTIES, or BETA_READ_PROPERTIES with the beta API)."""

    def __init__(self, api_version="v1.0", user=None, select=None):
        self.user = check_user(user) if user else None
        if self.user and api_version != "beta":
            raise InputError("user needs api_version beta: only the beta API has the user-scoped device collection")
        if self.user == "me":
            self.collection = "/me/devices"
        elif self.user:
            self.collection = "/users/%s/devices" % path_segment(self.user)
        else:
            self.collection = "/devices"
        if not select:
            select = BETA_READ_PROPERTIES if api_version == "beta" else READ_PROPERTIES
        self.select = ",".join(select)

    def by_id(self, object_id):
        return "%s/%s" % (self.collection, path_segment(check_guid("id", object_id)))

    def by_device_id(self, device_id):
        check_guid("device_id", device_id)
        if self.user:
            return None  # the user-scoped collection has no alternate key: look it up with $filter
        return "/devices(deviceId=%s)" % quote(odata_string(device_id), safe="'")

    def read(self, path):
        return path + query_string([("$select", self.select)])

    def search(self, prop, value, top=20):
        return self.collection + query_string([("$filter", "%s eq %s" % (prop, odata_string(value))),
                                               ("$select", self.select), ("$top", top)])
