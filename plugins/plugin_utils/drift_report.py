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

from ansible.errors import AnsibleFilterError
from ansible_collections.fleetguard.devices.plugins.module_utils.errors import shown_json
from ansible_collections.fleetguard.devices.plugins.plugin_utils.baseline import desired_pairs, device_key
from ansible_collections.fleetguard.devices.plugins.plugin_utils.identifiers import described, kind

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


OUTCOMES = ("changed", "unchanged", "failed", "not_attempted", "uncertain")
# What a plan entry holds (see baseline_plan); the report and the retry read every one of these.
ENTRY_KEYS = ("entry", "name", "directory", "field", "value", "desired", "problems")


def _is_number(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_entry(entry):
    if not isinstance(entry, Mapping) or not all(key in entry for key in ENTRY_KEYS) or not _is_number(entry["entry"]):
        return False
    if not isinstance(entry["desired"], Mapping) or not isinstance(entry["problems"], (list, tuple)):
        return False
    return entry["directory"] in DIRECTORIES or bool(entry["problems"])


def plan_entries(plan, name):
    """{entry number: entry} of the plan of baseline_plan, or the error that refuses it (`name`: the filter's)."""
    entries = plan.get("entries") if isinstance(plan, Mapping) else None
    if not isinstance(entries, (list, tuple)) or not all(_is_entry(entry) for entry in entries):
        raise AnsibleFilterError("%s: needs the plan of baseline_plan, not %s" % (name, described(plan)))
    by_number = dict((entry["entry"], entry) for entry in entries)
    if len(by_number) != len(entries):
        numbers = [entry["entry"] for entry in entries]
        raise AnsibleFilterError("%s: the plan numbers two entries %s: it is not the plan of baseline_plan"
                                 % (name, ", ".join(sorted(set(str(n) for n in numbers if numbers.count(n) > 1)))))
    return by_number


def _results(registered, where):
    """The loop results of registered module calls (a registered loop, or a list of them; None or a skipped task
    when not run), each a mapping. `where` names the argument in errors ("audit_report: first_pass")."""
    if registered is None:
        return []
    if isinstance(registered, (list, tuple)):
        return [result for one in registered for result in _results(one, where)]
    if not isinstance(registered, Mapping):
        raise AnsibleFilterError("%s must be a registered loop of module calls (or a list of them), not %s"
                                 % (where, kind(registered)))
    if "results" not in registered:
        if registered.get("skipped"):
            return []
        raise AnsibleFilterError("%s must be a registered loop of module calls (with results), not a dict of %s"
                                 % (where, shown_json(sorted(str(key) for key in registered))))
    results = registered["results"]
    if not isinstance(results, (list, tuple)) or not all(isinstance(result, Mapping) for result in results):
        raise AnsibleFilterError("%s: the results of a registered loop must be a list of module results, not %s%s"
                                 % (where, kind(results), "" if not isinstance(results, (list, tuple))
                                    else " holding " + ", ".join(sorted(set(kind(r) for r in results)))))
    return list(results)


def _numbered(registered, where):
    """(`where` result N, the result) for each loop result, N counted from 1 across the registered loops."""
    return [("%s result %d" % (where, number), result) for number, result in enumerate(_results(registered, where), 1)]


def _entry_of(entries, number, label):
    """The plan entry a result's item names by its number, or the error that refuses the result."""
    if not _is_number(number) or number not in entries:
        raise AnsibleFilterError("%s: its item names entry %s, which the plan does not have (entries %s)"
                                 % (label, shown_json(number), shown_json(sorted(entries))))
    if entries[number]["problems"]:
        raise AnsibleFilterError("%s: its item names entry %d, which the plan refused" % (label, number))
    return entries[number]


def _group_entries(entries, result, label):
    """The plan entries a call of a group compared: its item's `entries`."""
    item = result.get("item")
    numbers = item.get("entries") if isinstance(item, Mapping) else None
    if not isinstance(numbers, (list, tuple)):
        raise AnsibleFilterError("%s: its item must be a group of the plan, with the numbers of its entries, not %s"
                                 % (label, shown_json(item) if isinstance(item, Mapping) else kind(item)))
    return [_entry_of(entries, number, label) for number in numbers]


def results_by_entry(entries, first_pass, second_pass, name):
    """{entry number: (the result's label, the module result that compared it)}: a group's call that did not fail,
    else the entry's own call of the second pass (a failed call always carries msg; a good one never does)."""
    by_entry = {}
    for label, result in _numbered(first_pass, name + ": first_pass"):
        for entry in _group_entries(entries, result, label):
            if "msg" not in result:
                by_entry[entry["entry"]] = (label, result)
    for label, result in _numbered(second_pass, name + ": second_pass"):
        item = result.get("item")
        if not isinstance(item, Mapping) or "entry" not in item:
            raise AnsibleFilterError("%s: its item must be a call of audit_retry, with the number of its entry, not %s"
                                     % (label, shown_json(item) if isinstance(item, Mapping) else kind(item)))
        by_entry[_entry_of(entries, item["entry"], label)["entry"]] = (label, result)
    return by_entry


def retry_calls(plan, first_pass, name="audit_retry"):
    """The second pass: each entry of a group whose call failed, as a call of its own."""
    entries = plan_entries(plan, name)
    calls = []
    for label, result in _numbered(first_pass, name + ": first_pass"):
        for entry in _group_entries(entries, result, label):
            if "msg" in result:
                calls.append({"entry": entry["entry"], "field": entry["field"], "ids": [entry["value"]],
                              "desired": entry["desired"]})
    return calls


def _new_row(entry):
    return {"entry": entry["entry"], "name": entry["name"], "directory": entry["directory"],
            "identifier": {"field": entry["field"], "value": entry["value"]}, "desired": entry["desired"],
            "status": None, "object_id": None, "device": None, "differences": [], "candidates": [], "message": None}


def _malformed(label, entry, what):
    return AnsibleFilterError("%s (entry %d, %s=%s): %s" % (label, entry["entry"], entry["field"], entry["value"], what))


def _same_device(entry, value):
    return device_key(entry["directory"], entry["field"], value) == device_key(entry["directory"], entry["field"], entry["value"])


def _failed_call(row, entry, result, label):
    """The status of an entry whose call failed before any comparison: the lookup's problem, or the error."""
    problems = result.get("problems") or []
    if not isinstance(problems, (list, tuple)) or not all(isinstance(problem, Mapping) for problem in problems):
        raise _malformed(label, entry, "its problems must be a list of mappings, not %s" % kind(problems))
    problem = next((p for p in problems if p.get("value") is not None and _same_device(entry, p["value"])), None)
    noun = DIRECTORIES[entry["directory"]]["noun"]
    if problem is not None and problem.get("reason") == "missing":
        row.update(status="unmatched", message="matches no " + noun)
    elif problem is not None and problem.get("reason") == "ambiguous":
        candidates = problem.get("candidates") or []
        if not isinstance(candidates, (list, tuple)):
            raise _malformed(label, entry, "the candidates of its ambiguous lookup must be a list, not %s" % kind(candidates))
        row.update(status="ambiguous", candidates=list(candidates), message="matches %d %ss" % (len(candidates), noun))
    else:
        # A refusal before any write names its reason apart from the module's "nothing was changed" (an audit
        # never changes anything); any other error says what it says.
        error = result.get("error")
        reason = error.get("reason") if isinstance(error, Mapping) else None
        said = "the call was skipped" if result.get("skipped") else "failed"
        row.update(status="error", message=reason or result.get("msg") or said)


def _differences(change):
    """What a predicted change alters, property by property (a mapping's keys as properties of their own)."""
    differences = []
    after_all = change.get("after") or {}
    for name, before in change["before"].items():
        after = after_all.get(name)
        # A mapping against a mapping or nothing: its keys; against anything else, the whole value.
        if isinstance(before, Mapping) and isinstance(after, (Mapping, type(None))) or (
                before is None and isinstance(after, Mapping)):
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


def _compared(row, entry, result, label):
    """The status of an entry its call compared: in sync, drifted (with the differences), or the device's error."""
    names = DIRECTORIES[entry["directory"]]
    ids = result["item"].get("ids")
    if not isinstance(ids, (list, tuple)):
        raise _malformed(label, entry, "its item has no list of ids")
    position = next((index for index, value in enumerate(ids) if _same_device(entry, value)), None)
    if position is None:
        raise _malformed(label, entry, "its item's ids do not hold %s" % entry["value"])
    outcomes = result.get("outcomes")
    if not isinstance(outcomes, (list, tuple)) or len(outcomes) != len(ids) or not isinstance(outcomes[position], Mapping):
        raise _malformed(label, entry, "its outcomes must be a list of one mapping per id of its item (%d), not %s%s"
                         % (len(ids), kind(outcomes), " of %d" % len(outcomes) if isinstance(outcomes, (list, tuple)) else ""))
    outcome = outcomes[position]
    objects = result.get(names["objects"]) or []
    device = (objects[position] if isinstance(objects, (list, tuple)) and position < len(objects) else None) or {}
    if not isinstance(device, Mapping):
        raise _malformed(label, entry, "its %s must be a list of mappings, not of %s" % (names["objects"], kind(device)))
    row.update(object_id=outcome.get(names["id"]), device=device.get(names["label"], outcome.get(names["id"])))
    said = outcome.get("outcome")
    if said == "changed":
        row["differences"].extend(_differences(_change(result, outcome, names, label, entry)))
        row["status"] = "drifted"
    elif said == "unchanged":
        row["status"] = "in_sync"
    elif said in OUTCOMES:
        # failed, not attempted, or (in check mode) uncertain: a write the API's rules do not let it predict.
        row.update(status="error", message=outcome.get("reason") or said)
    else:
        raise _malformed(label, entry, "its outcome %s is none of %s" % (shown_json(said), ", ".join(OUTCOMES)))


def _change(result, outcome, names, label, entry):
    """The diff entry of a changed device: the module's diff follows the order of its changed ids."""
    changed = result.get(names["changed"])
    diff = result.get("diff")
    if not isinstance(changed, (list, tuple)) or outcome.get(names["id"]) not in changed:
        raise _malformed(label, entry, "its outcome is changed, but %s does not name %s"
                         % (names["changed"], shown_json(outcome.get(names["id"]))))
    position = changed.index(outcome[names["id"]])
    change = diff[position] if isinstance(diff, (list, tuple)) and position < len(diff) else None
    before = change.get("before") if isinstance(change, Mapping) else None
    if not isinstance(before, Mapping) or not isinstance(change.get("after") or {}, Mapping):
        raise _malformed(label, entry, "its outcome is changed, but its diff has no before and after for it"
                                       " (the audit runs the modules with diff)")
    return change


def _flag_conflicts(rows):
    """Two entries that found the same device through different identifiers (a serial number and a record id, a
    display name and an object id) and ask different values of one field: a conflict, since the device cannot be
    in both states; reporting one drifted and the other in sync would hide it. The plan has already refused one
    identifier asked two ways. An extension attribute counts as a field of its own."""
    compared = {}
    for row in rows:
        if row["status"] not in ("drifted", "in_sync") or row["object_id"] is None:
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


def report(plan, first_pass, second_pass, baseline, title, name="audit_report"):
    """The drift report (format_version 1): see the filter audit_report."""
    entries = plan_entries(plan, name)
    by_entry = results_by_entry(entries, first_pass, second_pass, name)
    rows = []
    for entry in entries.values():
        row = _new_row(entry)
        label, result = by_entry.get(entry["entry"], (None, None))
        if entry["problems"]:
            row.update(status="error", message="not compared: %s" % "; ".join(str(problem) for problem in entry["problems"]))
        elif result is None:
            row.update(status="error", message="no result for this entry")
        elif "outcomes" not in result:
            _failed_call(row, entry, result, label)
        else:
            _compared(row, entry, result, label)
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
