# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""The stale_devices role's variables checked and turned into the run's settings (the filter
stale_devices_settings): the reference day, the cutoff, the tag, and the three Graph queries."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible_collections.fleetguard.devices.plugins.module_utils.errors import shown
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_properties import (
    EXTENSION_ATTRIBUTE_MAX,
    STALE_CHECK_PROPERTIES,
    extension_attribute_name,
)
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_odata import odata_datetime, odata_string
from ansible_collections.fleetguard.devices.plugins.plugin_utils.identifiers import identifier_list

MODES = ("report", "disable", "delete")
# Survey text of a whole number: a sign and at most 12 ASCII digits (every bound below is far smaller).
WHOLE_NUMBER = re.compile(r"-?[0-9]{1,12}\Z")
TRUST_TYPES = ("AzureAd", "Workplace", "ServerAd")
# Graph moves approximateLastSignInDateTime only when the stored value is more than 14 days old, give or take 5
# (https://learn.microsoft.com/en-us/entra/identity/devices/manage-stale-devices): a device in daily use can look
# 19 days idle, so a shorter threshold would call active devices stale.
MIN_INACTIVE_DAYS = 20
# The longest span a day count (inactive days, grace days) or the reference day's distance from today may have: a
# longer one is a typo, and far longer ones leave the calendar (datetime raises "date value out of range").
MAX_DAYS = 3650
# More devices than a tenant holds: a larger max-changes guard is no guard, and most likely a typo.
MAX_CHANGES = 1000000
DAY = datetime.timedelta(days=1)
UTC = datetime.timezone.utc
# What the role reads of each device (physicalIds for the Autopilot check).
SELECT = list(STALE_CHECK_PROPERTIES)
FLAGS = ("include_never_signed_in", "reenable_returned", "as_of_writes")


def fail(message):
    raise AnsibleFilterError(message)


def parse_day(text):
    try:
        if isinstance(text, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text.strip()):
            return datetime.datetime.strptime(text.strip(), "%Y-%m-%d").date()
    except ValueError:
        pass
    return None


def midnight(day):
    return datetime.datetime(day.year, day.month, day.day, tzinfo=UTC)


def _int(settings, name, minimum, maximum, problems, why=""):
    """A whole number from minimum to maximum (survey text such as "90" too; not a bool, not 90.0)."""
    value = settings.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        # ASCII digits only: int() also reads "9_0" and other scripts' digits ("٩٠") as 90.
        text = value.strip() if isinstance(value, str) else None
        if text is None or not WHOLE_NUMBER.match(text):
            problems.append("stale_devices_%s must be a whole number, not %s" % (name, shown(value)))
            return None
        value = int(text)
    if value < minimum:
        problems.append("stale_devices_%s is %d; it must be at least %d%s" % (name, value, minimum, why))
        return None
    if value > maximum:
        problems.append("stale_devices_%s is %d; it must be at most %d" % (name, value, maximum))
        return None
    return value


def _strings(value, name, problems):
    """A list variable, read as identifier_list reads a role's identifier input (a list, or survey text split at
    commas and new lines); what is wrong with it is collected in `problems`."""
    try:
        return identifier_list(value)
    except AnsibleFilterError as exc:
        problems.append("stale_devices_%s: %s" % (name, str(exc.message).replace("identifier_list: ", "", 1)))
        return []


def _attribute(value, name, problems):
    found = extension_attribute_name(value) if isinstance(value, str) else None
    if found is None:
        problems.append("%s must be one of extensionAttribute1..extensionAttribute15, not %s" % (name, shown(value)))
    return found


def _as_of(variables, today, mode, problems):
    """The run's reference day: stale_devices_as_of, or today."""
    as_of_text = variables.get("as_of")
    as_of = today if as_of_text in (None, "") else parse_day(as_of_text)
    if as_of is None:
        problems.append("stale_devices_as_of must be a date, YYYY-MM-DD (or empty for today's UTC date), not %s"
                        % shown(as_of_text))
    elif abs((as_of - today).days) > MAX_DAYS:
        problems.append("stale_devices_as_of is %s; it must be within %d days of today (%s, UTC)"
                        % (as_of.isoformat(), MAX_DAYS, today.isoformat()))
        as_of = None
    elif as_of != today and mode in ("disable", "delete") and not variables.get("as_of_writes"):
        problems.append("stale_devices_as_of is %s but today is %s (UTC): a %s run takes its tag dates and grace periods"
                        " from it, so it must be today; set stale_devices_as_of_writes=true only against an emulator"
                        " whose clock was moved" % (as_of.isoformat(), today.isoformat(), mode))
    return as_of


def _tag_prefix(tag_prefix, problems):
    if not isinstance(tag_prefix, str) or not tag_prefix.strip():
        problems.append("stale_devices_tag_prefix must be a non-empty string, not %s" % shown(tag_prefix))
        return None
    if len(tag_prefix) + 10 > EXTENSION_ATTRIBUTE_MAX:
        problems.append("stale_devices_tag_prefix is %d characters long; with the date the tag must fit Graph's %d"
                        % (len(tag_prefix), EXTENSION_ATTRIBUTE_MAX))
        return None
    return tag_prefix


def _operating_systems(value, problems):
    names = _strings(value, "operating_systems", problems)
    for name in names:
        # Survey text with line breaks is read one entry per line, so "Windows, MacMDM" on one of them is one name.
        if "," in name:
            problems.append("stale_devices_operating_systems holds %s; give one operating system per line (or a"
                            " list)" % shown(name))
    return names


def _trust_types(given, problems):
    trust_types = []
    for value in _strings(given, "trust_types", problems):
        found = [name for name in TRUST_TYPES if name.lower() == value.lower()]
        if not found:
            problems.append("stale_devices_trust_types holds %s; Graph's trust types are %s"
                            % (shown(value), ", ".join(TRUST_TYPES)))
        elif found[0] not in trust_types:
            trust_types.append(found[0])
    return trust_types


def _exclude_attributes(raw_attributes, problems):
    exclude_attributes = {}
    raw_attributes = raw_attributes or {}
    if not isinstance(raw_attributes, Mapping):
        problems.append("stale_devices_exclude_extension_attributes must be a mapping of extensionAttributeN to"
                        " values, not %s" % shown(raw_attributes))
        raw_attributes = {}
    for key, values in raw_attributes.items():
        attribute = _attribute(key, "stale_devices_exclude_extension_attributes key %s" % shown(key), problems)
        values = _strings([values] if isinstance(values, str) else values,
                          "exclude_extension_attributes.%s" % key, problems)
        if attribute and values:
            exclude_attributes[attribute] = values
    return exclude_attributes


def settings_of(variables):
    """The role's variables (without the stale_devices_ prefix, plus `today`, the controller's UTC date) checked
    and turned into the run's settings. Every problem is listed in `problems` (nothing is read while any remains).
    """
    if not isinstance(variables, Mapping):
        fail("stale_devices_settings: expected a mapping of the role's variables, not %s" % shown(variables))
    problems = []
    mode = variables.get("mode")
    if mode not in MODES:
        problems.append("stale_devices_mode must be one of %s, not %s" % (", ".join(MODES), shown(mode)))
    inactive_days = _int(variables, "inactive_days", MIN_INACTIVE_DAYS, MAX_DAYS, problems,
                         " (Graph updates the sign-in time only every 14 days or so, give or take 5: a device in"
                         " daily use can look 19 days idle)")
    grace_days = _int(variables, "grace_days", 1, MAX_DAYS, problems)
    max_changes = _int(variables, "max_changes", 0, MAX_CHANGES, problems)
    today = parse_day(variables.get("today"))
    if today is None:
        fail("stale_devices_settings: today must be the controller's UTC date (YYYY-MM-DD), not %s"
             % shown(variables.get("today")))
    as_of = _as_of(variables, today, mode, problems)
    tag_attribute = _attribute(variables.get("tag_attribute"), "stale_devices_tag_attribute", problems)
    tag_prefix = _tag_prefix(variables.get("tag_prefix"), problems)
    operating_systems = _operating_systems(variables.get("operating_systems"), problems)
    trust_types = _trust_types(variables.get("trust_types"), problems)
    exclude = _strings(variables.get("exclude"), "exclude", problems)
    exclude_attributes = _exclude_attributes(variables.get("exclude_extension_attributes"), problems)
    # The host form (stale_devices_inventory_hosts): only these devices are decided, written and reported.
    inventory_ids = variables.get("inventory_ids")
    if inventory_ids is not None:
        inventory_ids = _strings(inventory_ids, "inventory_hosts", problems)
    for flag in FLAGS:
        if not isinstance(variables.get(flag, False), bool):
            problems.append("stale_devices_%s must be true or false, not %s" % (flag, shown(variables.get(flag))))

    settings = {
        "problems": problems,
        "mode": mode,
        "today": today.isoformat(),
        "as_of": as_of.isoformat() if as_of else None,
        "inactive_days": inactive_days,
        "grace_days": grace_days,
        "max_changes": max_changes,
        "include_never_signed_in": variables.get("include_never_signed_in") is True,
        "reenable_returned": variables.get("reenable_returned") is True,
        "operating_systems": operating_systems,
        "trust_types": trust_types,
        "exclude": exclude,
        "exclude_extension_attributes": exclude_attributes,
        "tag_attribute": tag_attribute,
        "tag_prefix": tag_prefix,
        "inventory_ids": inventory_ids,
        "tag": None,
        "cutoff": None,
        "select": list(SELECT),
        "queries": [],
    }
    if not problems:
        _add_queries(settings, as_of)
    return settings


def _add_queries(settings, as_of):
    """The tag, the cutoff and the three Graph queries, once every variable is good."""
    settings["tag"] = settings["tag_prefix"] + as_of.isoformat()
    settings["cutoff"] = odata_datetime(midnight(as_of) - settings["inactive_days"] * DAY)
    scope = _scope_filter(settings["operating_systems"], settings["trust_types"])
    settings["scope_filter"] = scope

    def scoped(clause):
        return "%s and %s" % (clause, scope) if scope else clause

    settings["queries"] = [
        # `le` on the timestamp: what Graph accepts (an unquoted DateTimeOffset), no advanced query needed.
        {"name": "stale", "filter": scope, "last_sign_in_before": settings["cutoff"], "advanced_query": False},
        # Null means "unknown" to Graph: read to be reported (and touched only with include_never_signed_in).
        {"name": "never_signed_in", "filter": scoped("approximateLastSignInDateTime eq null"),
         "last_sign_in_before": None, "advanced_query": True},
        # Tagged devices, whatever their sign-in time: phase 2 and the ones that came back.
        {"name": "tagged", "filter": scoped("startswith(extensionAttributes/%s, %s)"
                                            % (settings["tag_attribute"], odata_string(settings["tag_prefix"]))),
         "last_sign_in_before": None, "advanced_query": True},
    ]


def _scope_filter(operating_systems, trust_types):
    clauses = []
    if operating_systems:
        # operatingSystem takes eq but not `in` (https://learn.microsoft.com/en-us/graph/api/resources/device).
        clauses.append("(%s)" % " or ".join("operatingSystem eq %s" % odata_string(name) for name in operating_systems))
    if trust_types and set(trust_types) != set(TRUST_TYPES):
        clauses.append("trustType in (%s)" % ",".join(odata_string(name) for name in trust_types))
    return " and ".join(clauses) or None
