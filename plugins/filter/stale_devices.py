# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The decisions of the role fleetguard.devices.stale_devices, as three filters (documented in
plugins/filter/stale_devices_*.yml):

- stale_devices_settings: the role's variables checked, and turned into the run's settings: the reference
  day, the cutoff, the tag, and the three Graph queries (stale, never signed in, tagged);
- stale_devices_plan: every device those queries found, with the action the lifecycle takes for it and why,
  the writes each mode would send, and the max-changes guard;
- stale_devices_report: the plan with what the write modules did (or predicted, in check mode).

Only the write modules write; these filters decide, so check mode and a real run take the same decisions.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.utils.display import Display
from ansible_collections.fleetguard.devices.plugins.filter.devices import identifier_list
from ansible_collections.fleetguard.devices.plugins.module_utils.errors import shown
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_devices import (
    EXTENSION_ATTRIBUTE_MAX,
    NOT_WINDOWS,
    WINDOWS,
    extension_attribute_name,
    windows_class,
)
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_odata import odata_datetime, odata_string

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
# The order of the report, and which mode writes each action.
ACTIONS = ("delete", "disable", "reenable", "came_back", "grace", "keep", "blocked", "already_disabled",
           "never_signed_in", "excluded")
WRITTEN_BY = {"disable": ("disable",), "reenable": ("disable", "delete"), "delete": ("delete",)}
# Windows Autopilot devices carry a [ZTDID] physical id; Microsoft: "Don't delete system-managed devices ...
# once deleted, these devices can't be reprovisioned".
AUTOPILOT_ID = "[ZTDID]"
# The rule behind `refusal` (https://learn.microsoft.com/en-us/graph/api/device-update).
APP_ONLY_RULE = "Graph lets an app-only caller (application credentials) change only extension attributes of non-Windows devices"
DAY = datetime.timedelta(days=1)
UTC = datetime.timezone.utc
# What the role reads of each device (physicalIds for the Autopilot check).
SELECT = ["id", "deviceId", "displayName", "accountEnabled", "operatingSystem", "operatingSystemVersion", "trustType",
          "profileType", "registrationDateTime", "approximateLastSignInDateTime", "physicalIds", "extensionAttributes"]


display = Display()


def _fail(message):
    raise AnsibleFilterError(message)


def _shown(value):
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _parse_time(text):
    """A Graph DateTimeOffset (2026-08-30T13:05:00Z, with or without fraction) as an aware datetime, or None.
    A time of that shape that is no time (month 13, a year-1 time moved before year 1) raises ValueError."""
    if not isinstance(text, str) or not text:
        return None
    match = re.match(r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})?$", text)
    if not match:
        return None
    moment = datetime.datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S")
    offset = match.group(3)
    if offset and offset != "Z":
        sign = 1 if offset[0] == "+" else -1
        try:
            moment -= sign * datetime.timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
        except OverflowError:
            raise ValueError("it lies outside the calendar")
    return moment.replace(tzinfo=UTC)


def _parse_day(text):
    try:
        if isinstance(text, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text.strip()):
            return datetime.datetime.strptime(text.strip(), "%Y-%m-%d").date()
    except ValueError:
        pass
    return None


def _midnight(day):
    return datetime.datetime(day.year, day.month, day.day, tzinfo=UTC)


def _int(settings, name, minimum, maximum, problems, why=""):
    """A whole number from minimum to maximum (survey text such as "90" too; not a bool, not 90.0)."""
    value = settings.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        # ASCII digits only: int() also reads "9_0" and other scripts' digits ("٩٠") as 90.
        text = value.strip() if isinstance(value, str) else None
        if text is None or not WHOLE_NUMBER.match(text):
            problems.append("stale_devices_%s must be a whole number, not %s" % (name, _shown(value)))
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
        problems.append("%s must be one of extensionAttribute1..extensionAttribute15, not %s" % (name, _shown(value)))
    return found


# --- settings ------------------------------------------------------------------------------------------------


def stale_devices_settings(variables):
    """The role's variables (without the stale_devices_ prefix, plus `today`, the controller's UTC date) checked
    and turned into the run's settings. Every problem is listed in `problems` (nothing is read while any remains).
    """
    if not isinstance(variables, Mapping):
        _fail("stale_devices_settings: expected a mapping of the role's variables, not %s" % _shown(variables))
    problems = []
    mode = variables.get("mode")
    if mode not in MODES:
        problems.append("stale_devices_mode must be one of %s, not %s" % (", ".join(MODES), _shown(mode)))
    inactive_days = _int(variables, "inactive_days", MIN_INACTIVE_DAYS, MAX_DAYS, problems,
                         " (Graph updates the sign-in time only every 14 days or so, give or take 5: a device in"
                         " daily use can look 19 days idle)")
    grace_days = _int(variables, "grace_days", 1, MAX_DAYS, problems)
    max_changes = _int(variables, "max_changes", 0, MAX_CHANGES, problems)

    today = _parse_day(variables.get("today"))
    if today is None:
        _fail("stale_devices_settings: today must be the controller's UTC date (YYYY-MM-DD), not %s"
              % _shown(variables.get("today")))
    as_of_text = variables.get("as_of")
    as_of = today if as_of_text in (None, "") else _parse_day(as_of_text)
    if as_of is None:
        problems.append("stale_devices_as_of must be a date, YYYY-MM-DD (or empty for today's UTC date), not %s"
                        % _shown(as_of_text))
    elif abs((as_of - today).days) > MAX_DAYS:
        problems.append("stale_devices_as_of is %s; it must be within %d days of today (%s, UTC)"
                        % (as_of.isoformat(), MAX_DAYS, today.isoformat()))
        as_of = None
    elif as_of != today and mode in ("disable", "delete") and not variables.get("as_of_writes"):
        problems.append("stale_devices_as_of is %s but today is %s (UTC): a %s run takes its tag dates and grace periods"
                        " from it, so it must be today; set stale_devices_as_of_writes=true only against an emulator"
                        " whose clock was moved" % (as_of.isoformat(), today.isoformat(), mode))

    tag_attribute = _attribute(variables.get("tag_attribute"), "stale_devices_tag_attribute", problems)
    tag_prefix = variables.get("tag_prefix")
    if not isinstance(tag_prefix, str) or not tag_prefix.strip():
        problems.append("stale_devices_tag_prefix must be a non-empty string, not %s" % _shown(tag_prefix))
        tag_prefix = None
    elif len(tag_prefix) + 10 > EXTENSION_ATTRIBUTE_MAX:
        problems.append("stale_devices_tag_prefix is %d characters long; with the date the tag must fit Graph's %d"
                        % (len(tag_prefix), EXTENSION_ATTRIBUTE_MAX))
        tag_prefix = None

    operating_systems = _strings(variables.get("operating_systems"), "operating_systems", problems)
    for name in operating_systems:
        # Survey text with line breaks is read one entry per line, so "Windows, MacMDM" on one of them is one name.
        if "," in name:
            problems.append("stale_devices_operating_systems holds %s; give one operating system per line (or a"
                            " list)" % _shown(name))
    trust_types = []
    for value in _strings(variables.get("trust_types"), "trust_types", problems):
        found = [name for name in TRUST_TYPES if name.lower() == value.lower()]
        if not found:
            problems.append("stale_devices_trust_types holds %s; Graph's trust types are %s"
                            % (_shown(value), ", ".join(TRUST_TYPES)))
        elif found[0] not in trust_types:
            trust_types.append(found[0])
    exclude = _strings(variables.get("exclude"), "exclude", problems)
    exclude_attributes = {}
    raw_attributes = variables.get("exclude_extension_attributes") or {}
    if not isinstance(raw_attributes, Mapping):
        problems.append("stale_devices_exclude_extension_attributes must be a mapping of extensionAttributeN to"
                        " values, not %s" % _shown(raw_attributes))
        raw_attributes = {}
    for key, values in raw_attributes.items():
        attribute = _attribute(key, "stale_devices_exclude_extension_attributes key %s" % _shown(key), problems)
        values = _strings([values] if isinstance(values, str) else values,
                          "exclude_extension_attributes.%s" % key, problems)
        if attribute and values:
            exclude_attributes[attribute] = values
    # The host form (stale_devices_inventory_hosts): only these devices are decided, written and reported.
    inventory_ids = variables.get("inventory_ids")
    if inventory_ids is not None:
        inventory_ids = _strings(inventory_ids, "inventory_hosts", problems)
    for flag in ("include_never_signed_in", "reenable_returned", "as_of_writes"):
        if not isinstance(variables.get(flag, False), bool):
            problems.append("stale_devices_%s must be true or false, not %s" % (flag, _shown(variables.get(flag))))

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
    if problems:
        return settings
    settings["tag"] = tag_prefix + as_of.isoformat()
    settings["cutoff"] = odata_datetime(_midnight(as_of) - inactive_days * DAY)
    scope = _scope_filter(operating_systems, trust_types)
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
                                            % (tag_attribute, odata_string(tag_prefix))),
         "last_sign_in_before": None, "advanced_query": True},
    ]
    return settings


def _scope_filter(operating_systems, trust_types):
    clauses = []
    if operating_systems:
        # operatingSystem takes eq but not `in` (https://learn.microsoft.com/en-us/graph/api/resources/device).
        clauses.append("(%s)" % " or ".join("operatingSystem eq %s" % odata_string(name) for name in operating_systems))
    if trust_types and set(trust_types) != set(TRUST_TYPES):
        clauses.append("trustType in (%s)" % ",".join(odata_string(name) for name in trust_types))
    return " and ".join(clauses) or None


# --- plan ----------------------------------------------------------------------------------------------------


def stale_devices_plan(devices, settings, refusal=None):
    """Every device the role's queries found (duplicates merged), with its action and the reason.

    `refusal`: why this caller may not change accountEnabled on non-Windows devices (Graph's rule for app-only
    callers, found by a check-mode probe), or None; such devices are then `blocked` instead of written.
    """
    if not isinstance(settings, Mapping) or settings.get("problems") or not settings.get("cutoff"):
        _fail("stale_devices_plan: needs the settings of stale_devices_settings, without problems")
    if not isinstance(devices, (list, tuple)):
        _fail("stale_devices_plan: expected the list of devices the queries returned, not %s" % _shown(devices))
    as_of = _parse_day(settings["as_of"])
    seen = {}
    only = settings.get("inventory_ids")
    only = None if only is None else set(str(object_id).lower() for object_id in only)
    for device in devices:
        if not isinstance(device, Mapping) or not device.get("id"):
            _fail("stale_devices_plan: %s is not a Graph device with an id" % _shown(device))
        if only is None or str(device["id"]).lower() in only:
            seen.setdefault(str(device["id"]).lower(), device)
    rows = [_row(device, settings, as_of, refusal) for device in seen.values()]
    unmatched = _unmatched_exclusions(devices, settings["exclude"])
    rows.sort(key=lambda row: (ACTIONS.index(row["action"]), -(row["age_days"] if row["age_days"] is not None else -1),
                               (row["displayName"] or "").lower(), row["id"]))
    writes = {
        "disable": [row["id"] for row in rows if row["action"] == "disable"],
        "reenable": [row["id"] for row in rows if row["action"] == "reenable"],
        "delete": [row["id"] for row in rows if row["action"] == "delete"],
    }
    changes = dict((mode, sum(len(writes[action]) for action, modes in WRITTEN_BY.items() if mode in modes))
                   for mode in ("disable", "delete"))
    mode = settings["mode"]
    mode_changes = changes.get(mode, 0)
    counts = dict((action, 0) for action in ACTIONS)
    for row in rows:
        counts[row["action"]] += 1
    return {
        "settings": dict(settings),
        "rows": rows,
        "counts": counts,
        "writes": writes,
        "changes": changes,
        "probe": None if refusal else _probe(rows),
        "refusal": refusal,
        "unmatched_exclusions": unmatched,
        "guard": {"max_changes": settings["max_changes"], "changes": mode_changes,
                  "tripped": mode in ("disable", "delete") and mode_changes > settings["max_changes"]},
    }


def _unmatched_exclusions(devices, exclude):
    """The entries of stale_devices_exclude that name none of the devices read, in the order given, with a warning:
    a misspelt name (or one a comma split) would otherwise leave its device unprotected without a word. The whole
    read counts, not only the host form's hosts, so that a slice does not warn about another slice's devices."""
    names = set()
    for device in devices:
        names.update(str(device.get(key)).lower() for key in ("id", "deviceId", "displayName") if device.get(key))
    unmatched = [entry for entry in exclude if entry.lower() not in names]
    if unmatched:
        display.warning("stale_devices_exclude: %d entr%s matched none of the %d devices read (stale, never signed in"
                        " or tagged, within the scope): %s. A device that is active or out of scope is not read, so"
                        " this may be right; otherwise check the spelling (survey text: one entry per line)."
                        % (len(unmatched), "y" if len(unmatched) == 1 else "ies", len(devices),
                           _shown_list(unmatched)))
    return unmatched


def _shown_list(values):
    # repr() shows what cannot be seen (a zero-width space, a byte-order mark) as an escape.
    text = ", ".join(shown(value) for value in values)
    return text if len(text) <= 400 else text[:397] + "..."


def _probe(rows):
    """A non-Windows device whose accountEnabled the lifecycle would change, to learn (in check mode) whether this
    caller may: Graph lets an app-only caller change only extensionAttributes of non-Windows devices. Only a device
    the rule documents as non-Windows tells: for "Windows Server" check mode cannot say either way."""
    for row in rows:
        if windows_class(row["operatingSystem"]) != NOT_WINDOWS or row["action"] not in ("disable", "reenable"):
            continue
        if row["action"] == "disable" or row["accountEnabled"] is False:
            return {"id": row["id"], "account_enabled": row["action"] == "reenable"}
    return None


def _windows(row):
    """Whether Graph's app-only rule documents the device as Windows (the module's rule, windows_class): a
    device it does not place ("Windows Server", no operatingSystem) is probed and blocked like a non-Windows one."""
    return windows_class(row["operatingSystem"]) == WINDOWS


def _row(device, settings, as_of, refusal):
    attributes = device.get("extensionAttributes") or {}
    attribute = settings["tag_attribute"]
    tag_value = attributes.get(attribute)
    try:
        last_sign_in = _parse_time(device.get("approximateLastSignInDateTime"))
    except ValueError as exc:
        _fail("stale_devices_plan: device %s has approximateLastSignInDateTime %s, which is no time (%s); nothing"
              " was written" % (device.get("id"), _shown(device.get("approximateLastSignInDateTime")), exc))
    reference = _midnight(as_of)
    age = None if last_sign_in is None else max(0, (reference - last_sign_in).days)
    row = {
        "id": device.get("id"),
        "deviceId": device.get("deviceId"),
        "displayName": device.get("displayName"),
        "operatingSystem": device.get("operatingSystem"),
        "trustType": device.get("trustType"),
        "accountEnabled": device.get("accountEnabled"),
        "approximateLastSignInDateTime": device.get("approximateLastSignInDateTime"),
        "age_days": age,
        "tag": tag_value,
        "tag_date": None,
        "action": None,
        "reason": None,
    }
    tagged = isinstance(tag_value, str) and tag_value.lower().startswith(settings["tag_prefix"].lower())
    tag_date = _parse_day(tag_value[len(settings["tag_prefix"]):]) if tagged else None
    row["tag_date"] = tag_date.isoformat() if tag_date else None

    def decide(action, reason):
        row["action"], row["reason"] = action, reason
        return row

    excluded = _exclusion(device, settings)
    if excluded:
        return decide("excluded", excluded + (" (it carries %s=%s; the role leaves it as it is)" % (attribute, tag_value)
                                              if tagged else ""))
    if any(AUTOPILOT_ID in str(physical_id) for physical_id in device.get("physicalIds") or []):
        return decide("excluded", "a Windows Autopilot device (its physicalIds hold a ZTDID): Microsoft says never to"
                                  " delete these, they cannot be provisioned again")
    stale_by_age = age is not None and age >= settings["inactive_days"]
    idle = ("has not signed in for %d days (last %s)" % (age, last_sign_in.date().isoformat())
            if age is not None else "has no sign-in time")
    if tagged:
        return _tagged(row, decide, settings, as_of, tag_date, last_sign_in, stale_by_age, idle, refusal)
    if last_sign_in is None and not settings["include_never_signed_in"]:
        return decide("never_signed_in", "no sign-in time (Graph: unknown, not old); set"
                                         " stale_devices_include_never_signed_in=true to treat it as stale")
    if not stale_by_age and last_sign_in is not None:
        return decide("keep", "signed in %d days ago (last %s), within stale_devices_inactive_days=%d"
                      % (age, last_sign_in.date().isoformat(), settings["inactive_days"]))
    why = ("never signed in, and stale_devices_include_never_signed_in is true" if last_sign_in is None
           else "%s, at least stale_devices_inactive_days=%d" % (idle, settings["inactive_days"]))
    if row["accountEnabled"] is False:
        return decide("already_disabled", "%s; already disabled by someone else, without the tag: reported, not"
                                          " written (it will never be deleted by this role)" % why)
    if tag_value not in (None, ""):
        return decide("blocked", "%s; but %s already holds %s, which the role does not overwrite (choose another"
                                 " stale_devices_tag_attribute, or clear it)" % (why, attribute, _shown(tag_value)))
    if refusal and not _windows(row):
        return decide("blocked", "%s; but %s (disable it as a delegated administrator, or leave %s out with"
                                 " stale_devices_operating_systems)" % (why, APP_ONLY_RULE, row["operatingSystem"]))
    return decide("disable", "%s: disable it and tag it %s=%s" % (why, attribute, settings["tag"]))


def _tagged(row, decide, settings, as_of, tag_date, last_sign_in, stale_by_age, idle, refusal):
    attribute = settings["tag_attribute"]
    if tag_date is None:
        return decide("keep", "%s holds %s, which carries no valid date: not deleted (fix or clear the tag)"
                      % (attribute, _shown(row["tag"])))
    if tag_date > as_of:
        return decide("keep", "tagged on %s, after the run's date %s: not deleted" % (tag_date, as_of))
    if last_sign_in is not None and last_sign_in >= _midnight(tag_date):
        came_back = "signed in on %s, after it was disabled and tagged on %s" % (last_sign_in.date(), tag_date)
        if not settings["reenable_returned"]:
            return decide("came_back", came_back + ": not deleted, not re-enabled (clear the tag and enable it, or set"
                                                   " stale_devices_reenable_returned=true)")
        if refusal and row["accountEnabled"] is False and not _windows(row):
            return decide("blocked", "%s; but %s (enable it as a delegated administrator)" % (came_back, APP_ONLY_RULE))
        return decide("reenable", came_back + ": enable it and clear the tag (stale_devices_reenable_returned)")
    if row["accountEnabled"] is not False:
        return decide("keep", "tagged on %s but enabled again since (by someone else), with no sign-in since: not"
                              " deleted; clear the tag, or disable it again" % tag_date)
    if last_sign_in is None and not settings["include_never_signed_in"]:
        return decide("never_signed_in", "tagged on %s, but it has no sign-in time and"
                                         " stale_devices_include_never_signed_in is false: not deleted" % tag_date)
    if last_sign_in is not None and not stale_by_age:
        return decide("keep", "tagged on %s, but with stale_devices_inactive_days=%d it is not stale (%s): not deleted"
                      % (tag_date, settings["inactive_days"], idle))
    waited = (as_of - tag_date).days
    if waited < settings["grace_days"]:
        due = tag_date + settings["grace_days"] * DAY
        return decide("grace", "disabled and tagged on %s, no sign-in since; deletion due on %s (%d of %d grace days"
                               " passed)" % (tag_date, due, waited, settings["grace_days"]))
    return decide("delete", "disabled and tagged on %s (%d days ago, grace %d days), no sign-in since: delete it"
                  % (tag_date, waited, settings["grace_days"]))


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
            return "%s is %s (stale_devices_exclude_extension_attributes)" % (attribute, _shown(value))
    return None


# --- report --------------------------------------------------------------------------------------------------


def stale_devices_report(plan, results, check_mode=False, title="Stale device report"):
    """The plan with what happened: each row's `status` is `done` (written by this run), `would` (check mode: the real
    run would write it), `planned` (another mode writes it), `stopped` (the max-changes guard stopped the run),
    `failed` (the write failed: the reason says why) or `none` (nothing to write)."""
    if not isinstance(plan, Mapping) or "rows" not in plan:
        _fail("stale_devices_report: needs the plan of stale_devices_plan, not %s" % _shown(plan))
    results = results or {}
    settings = plan["settings"]
    mode = settings["mode"]
    rows = []
    for planned in plan["rows"]:
        row = dict(planned)
        action = row["action"]
        writers = WRITTEN_BY.get(action, ())
        if not writers:
            row["status"] = "none"
        elif mode not in writers:
            row["status"] = "planned"
        elif plan["guard"]["tripped"]:
            row["status"] = "stopped"
        else:
            outcome, problem = _outcome(results.get(action), row["id"])
            if problem:
                row["status"] = "failed"
                row["reason"] = "%s; the %s failed: %s" % (row["reason"], action, problem)
            else:
                row["status"] = "would" if check_mode else "done"
                if outcome == "unchanged":
                    row["reason"] += " (it already was)"
        rows.append(row)
    statuses = ("done", "would", "planned", "stopped", "failed", "none")
    summary = {"devices": len(rows)}
    summary.update(dict((action, plan["counts"][action]) for action in ACTIONS))
    summary.update(dict((status, sum(1 for row in rows if row["status"] == status)) for status in statuses))
    return {
        "report": "fleetguard.devices.stale_devices report",
        "format_version": 1,
        "title": title,
        "mode": mode,
        "check_mode": bool(check_mode),
        "as_of": settings["as_of"],
        "settings": dict((key, settings[key]) for key in (
            "inactive_days", "grace_days", "cutoff", "include_never_signed_in", "reenable_returned",
            "operating_systems", "trust_types", "exclude", "exclude_extension_attributes", "tag_attribute",
            "tag_prefix", "tag", "max_changes")),
        # The host form: how many inventory hosts this run decided for (None: the whole tenant).
        "inventory_hosts": None if settings.get("inventory_ids") is None else len(settings["inventory_ids"]),
        "guard": dict(plan["guard"], would_change=dict(plan["changes"])),
        "refusal": plan.get("refusal"),
        "unmatched_exclusions": list(plan.get("unmatched_exclusions") or []),
        "summary": summary,
        # What this run wrote and failed to write, by name: the role publishes both with set_stats, also when the
        # report files cannot be written.
        "written": _named(rows, "done"),
        "failed_writes": _named(rows, "failed"),
        "devices": rows,
    }


def _named(rows, status):
    return [dict((key, row[key]) for key in ("id", "displayName", "action")) for row in rows if row["status"] == status]


def _outcome(result, object_id):
    """(outcome, problem) of one device in a write module's result."""
    if not isinstance(result, Mapping) or result.get("skipped"):
        return None, "the write was not run"
    for outcome in result.get("outcomes") or []:
        if str(outcome.get("id") or outcome.get("identifier") or "").lower() == object_id.lower():
            if outcome.get("outcome") in ("changed", "unchanged"):
                return outcome["outcome"], None
            return None, outcome.get("reason") or outcome.get("outcome")
    return None, result.get("msg") or "no outcome was returned for it"


class FilterModule(object):
    """fleetguard.devices filters of the stale_devices role."""

    def filters(self):
        return {
            "stale_devices_settings": stale_devices_settings,
            "stale_devices_plan": stale_devices_plan,
            "stale_devices_report": stale_devices_report,
        }
