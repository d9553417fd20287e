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

from collections.abc import Mapping

from ansible.utils.display import Display
from ansible_collections.fleetguard.devices.plugins.module_utils.errors import shown
from ansible_collections.fleetguard.devices.plugins.plugin_utils.stale_lifecycle import ACTIONS, WRITTEN_BY, probe, row as lifecycle_row
from ansible_collections.fleetguard.devices.plugins.plugin_utils.stale_settings import fail as _fail, parse_day, settings_of


display = Display()


def stale_devices_settings(variables):
    """The role's variables (without the stale_devices_ prefix, plus `today`, the controller's UTC date) checked
    and turned into the run's settings. Every problem is listed in `problems` (nothing is read while any remains).
    """
    return settings_of(variables)


# --- plan ----------------------------------------------------------------------------------------------------


def stale_devices_plan(devices, settings, refusal=None):
    """Every device the role's queries found (duplicates merged), with its action and the reason.

    `refusal`: why this caller may not change accountEnabled on non-Windows devices (Graph's rule for app-only
    callers, found by a check-mode probe), or None; such devices are then `blocked` instead of written.
    """
    if not isinstance(settings, Mapping) or settings.get("problems") or not settings.get("cutoff"):
        _fail("stale_devices_plan: needs the settings of stale_devices_settings, without problems")
    if not isinstance(devices, (list, tuple)):
        _fail("stale_devices_plan: expected the list of devices the queries returned, not %s" % shown(devices))
    as_of = parse_day(settings["as_of"])
    seen = {}
    only = settings.get("inventory_ids")
    only = None if only is None else set(str(object_id).lower() for object_id in only)
    for device in devices:
        if not isinstance(device, Mapping) or not device.get("id"):
            _fail("stale_devices_plan: %s is not a Graph device with an id" % shown(device))
        if only is None or str(device["id"]).lower() in only:
            seen.setdefault(str(device["id"]).lower(), device)
    rows = [lifecycle_row(device, settings, as_of, refusal) for device in seen.values()]
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
        "probe": None if refusal else probe(rows),
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


# --- report --------------------------------------------------------------------------------------------------


def stale_devices_report(plan, results, check_mode=False, title="Stale device report"):
    """The plan with what happened: each row's `status` is `done` (written by this run), `would` (check mode: the real
    run would write it), `planned` (another mode writes it), `stopped` (the max-changes guard stopped the run),
    `failed` (the write failed: the reason says why) or `none` (nothing to write)."""
    if not isinstance(plan, Mapping) or "rows" not in plan:
        _fail("stale_devices_report: needs the plan of stale_devices_plan, not %s" % shown(plan))
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
