# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""The audit role's drift report, from the plan (baseline_plan) and the check-mode results of the write modules:
each entry's status from the modules' data (outcomes, problems, diff), never from their message text."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from collections.abc import Mapping

from ansible_collections.fleetguard.devices.plugins.plugin_utils.baseline import desired_pairs

# What each directory's write module calls its objects, their id and its result's lists.
DIRECTORIES = {
    "feishu": {"id": "device_record_id", "objects": "device_records", "changed": "changed_records",
               "label": "device_name", "noun": "device record"},
    "msgraph": {"id": "id", "objects": "devices", "changed": "changed_devices", "label": "displayName",
                "noun": "device"},
}
STATUSES = ("drifted", "in_sync", "unmatched", "ambiguous", "error", "conflict")
# The report's lists and summary counts, by status.
LISTS = {"drifted": "drifted", "in_sync": "in_sync", "unmatched": "unmatched", "ambiguous": "ambiguous",
         "error": "errors", "conflict": "conflicts"}


def _results(registered):
    """The loop results of registered module calls (a registered loop, or a list of them; None when not run)."""
    if registered is None:
        return []
    if isinstance(registered, Mapping):
        return list(registered.get("results") or [])
    return [result for one in registered for result in _results(one)]


def results_by_entry(first_pass, second_pass):
    """{entry number: the module result that compared it}: a group's call that did not fail, else the entry's own
    call of the second pass (a failed call always carries msg; a good one never does)."""
    by_entry = {}
    for result in _results(first_pass):
        if "msg" not in result:
            for number in result["item"]["entries"]:
                by_entry[number] = result
    for result in _results(second_pass):
        by_entry[result["item"]["entry"]] = result
    return by_entry


def retry_calls(plan, first_pass):
    """The second pass: each entry of a group whose call failed, as a call of its own."""
    calls = []
    for result in _results(first_pass):
        if "msg" in result:
            for number in result["item"]["entries"]:
                entry = plan["entries"][number - 1]
                calls.append({"entry": number, "field": entry["field"], "ids": [entry["value"]], "desired": entry["desired"]})
    return calls


def _new_row(entry):
    return {"entry": entry["entry"], "name": entry["name"], "directory": entry["directory"],
            "identifier": {"field": entry["field"], "value": entry["value"]}, "desired": entry["desired"],
            "status": None, "object_id": None, "device": None, "differences": [], "candidates": [], "message": None}


def _failed_call(row, entry, result):
    """The status of an entry whose call failed before any comparison: the lookup's problem, or the error."""
    problem = next((p for p in result.get("problems") or [] if p.get("value") == entry["value"]), None)
    noun = DIRECTORIES[entry["directory"]]["noun"]
    if problem is not None and problem.get("reason") == "missing":
        row.update(status="unmatched", message="matches no " + noun)
    elif problem is not None and problem.get("reason") == "ambiguous":
        row.update(status="ambiguous", candidates=problem["candidates"],
                   message="matches %d %ss" % (len(problem["candidates"]), noun))
    else:
        # A refusal before any write names its reason apart from the module's "nothing was changed" (an audit
        # never changes anything); any other error says what it says.
        error = result.get("error")
        reason = error.get("reason") if isinstance(error, Mapping) else None
        row.update(status="error", message=reason or result.get("msg", "failed"))


def _differences(change):
    """What a predicted change alters, property by property (a mapping's keys as properties of their own)."""
    differences = []
    after_all = change.get("after") or {}
    for name, before in change["before"].items():
        after = after_all.get(name)
        if isinstance(before, Mapping) or isinstance(after, Mapping):
            before, after = before or {}, after or {}
            for key in _unique(list(before) + list(after)):
                if before.get(key) != after.get(key):
                    differences.append({"property": "%s.%s" % (name, key), "current": before.get(key),
                                        "desired": after.get(key)})
        elif before != after:
            differences.append({"property": name, "current": before, "desired": after})
    return differences


def _unique(values):
    seen = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


def _compared(row, entry, result):
    """The status of an entry its call compared: in sync, drifted (with the differences), or the device's error."""
    names = DIRECTORIES[entry["directory"]]
    position = result["item"]["ids"].index(entry["value"])
    outcome = result["outcomes"][position]
    objects = result.get(names["objects"]) or []
    device = (objects[position] if position < len(objects) else None) or {}
    row.update(object_id=outcome.get(names["id"]), device=device.get(names["label"], outcome.get(names["id"])))
    if outcome.get("outcome") in ("failed", "not_attempted"):
        row.update(status="error", message=outcome.get("reason", outcome["outcome"]))
    elif outcome.get("outcome") == "changed":
        change = result["diff"][result[names["changed"]].index(outcome[names["id"]])]
        row["differences"].extend(_differences(change))
        row["status"] = "drifted"
    else:
        row["status"] = "in_sync"


def _flag_conflicts(rows):
    """Two entries that found the same device through different identifiers (a serial number and a record id, a
    display name and an object id) and ask different values of one field: a conflict, since the device cannot be
    in both states; reporting one drifted and the other in sync would hide it. The plan has already refused one
    identifier asked two ways. An extension attribute counts as a field of its own."""
    compared = {}
    for row in rows:
        if row["status"] not in ("drifted", "in_sync"):
            continue
        asked = desired_pairs(row["desired"])
        earlier_rows = compared.setdefault("%s|%s" % (row["directory"], row["object_id"]), [])
        for earlier, earlier_asked in earlier_rows:
            differing = sorted(key for key, value in asked.items() if key in earlier_asked and earlier_asked[key] != value)
            if differing:
                _conflict(row, earlier, earlier_asked, differing)
                _conflict(earlier, row, asked, differing)
        earlier_rows.append((row, asked))


def _conflict(one, other, other_asked, differing):
    wanted = ", ".join("%s=%s" % (key, json.dumps(other_asked[key])) for key in differing)
    said = "found the same device as entry %d (%s=%s), which asks %s" % (
        other["entry"], other["identifier"]["field"], other["identifier"]["value"], wanted)
    one["message"] = "%s; %s" % (one["message"], said) if one["status"] == "conflict" else said
    one["status"] = "conflict"


def report(plan, first_pass, second_pass, baseline, title):
    """The drift report (format_version 1): see the filter audit_report."""
    by_entry = results_by_entry(first_pass, second_pass)
    rows = []
    for entry in plan["entries"]:
        row = _new_row(entry)
        result = by_entry.get(entry["entry"])
        if result is None:
            row.update(status="error", message="no result for this entry")
        elif "outcomes" not in result:
            _failed_call(row, entry, result)
        else:
            _compared(row, entry, result)
        rows.append(row)
    _flag_conflicts(rows)
    summary = {"entries": len(rows),
               "differences": sum(len(row["differences"]) for row in rows if row["status"] == "drifted")}
    for status in STATUSES:
        summary[LISTS[status] if status in ("error", "conflict") else status] = sum(1 for row in rows if row["status"] == status)
    body = {"report": "fleetguard.devices.audit drift report", "format_version": 1, "title": title,
            "baseline": dict(baseline, entries=len(rows)), "summary": summary}
    for status in ("drifted", "unmatched", "ambiguous", "error", "conflict", "in_sync"):
        body[LISTS[status]] = [row for row in rows if row["status"] == status]
    return body
