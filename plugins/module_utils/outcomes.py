# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""What happened to each device, and the module result that reports every device's outcome.

A bulk run that partly fails still names every identifier with its outcome (changed, unchanged, failed
with the reason, not attempted), so the devices that succeeded stay done and a second run finishes the rest.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import UncertainWrite

CHANGED = "changed"
UNCHANGED = "unchanged"
FAILED = "failed"
NOT_ATTEMPTED = "not_attempted"
UNCERTAIN = "uncertain"
UNFINISHED = (FAILED, NOT_ATTEMPTED, UNCERTAIN)


class Change:
    """What happened to one object: `before`, `after` (predicted in check mode) and `changed`; or the
    `error` that stopped it; or `attempted=False` when a fatal error elsewhere stopped the run first."""

    def __init__(self, before, after=None, changed=False, error=None, attempted=True):
        self.before = before
        self.after = after
        self.changed = changed
        self.error = error
        self.attempted = attempted


def changes_from(results, id_key):
    """{object id: Change} from bulk.run_each results whose values are Changes."""
    changes = {}
    for result in results:
        if not result.attempted:
            changes[result.item[id_key]] = Change(result.item, attempted=False)
        elif result.error is not None:
            changes[result.item[id_key]] = Change(result.item, error=result.error)
        else:
            changes[result.item[id_key]] = result.value
    return changes


def report(values, matches, changes, directory, objects_key, changed_key, diff_of=None, check_mode=False):
    """The module result, in input order, from what happened to each object.

    `directory` names the objects (its ID_KEY and NOUN). The result has `failed`, `changed`, the
    objects after the task under `objects_key`, the changed ids under `changed_key`, `outcomes`,
    `summary`, `diff` (when `diff_of` is given) and, on failure, a `msg` naming every device that did
    not finish. In check mode nothing is written, so an `uncertain` device is one whose write cannot be
    predicted (the API's documented rules do not place it): it is reported, and does not fail the task.
    """
    id_key = directory.ID_KEY
    outcomes, objects, changed_ids, diffs = [], [], [], []
    for value in values:
        if not matches[value]:
            outcomes.append({"identifier": value, id_key: None, "outcome": UNCHANGED})
            objects.append({})
            continue
        object_id = matches[value][0][id_key]
        change = changes[object_id]
        outcome = {"identifier": value, id_key: object_id}
        if not change.attempted:
            outcome.update(outcome=NOT_ATTEMPTED, reason="not attempted: a fatal error on another device stopped the run")
            objects.append(change.before)
        elif change.error is not None:
            outcome.update(outcome=UNCERTAIN if isinstance(change.error, UncertainWrite) else FAILED,
                           reason=str(change.error))
            objects.append(change.before)
        else:
            outcome["outcome"] = CHANGED if change.changed else UNCHANGED
            objects.append(change.after)
            if change.changed and object_id not in changed_ids:
                changed_ids.append(object_id)
                if diff_of is not None:
                    diffs.append(diff_of(change))
        outcomes.append(outcome)
    failed = any(o["outcome"] in ((FAILED, NOT_ATTEMPTED) if check_mode else UNFINISHED) for o in outcomes)
    result = {"failed": failed, "changed": bool(changed_ids), objects_key: objects, changed_key: changed_ids,
              "outcomes": outcomes, "summary": outcome_summary(outcomes)}
    if diff_of is not None:
        result["diff"] = diffs
    if failed:
        result["msg"] = failure_message(outcomes, directory.NOUN + "s")
    return result


def outcome_summary(outcomes):
    """Counts by outcome, e.g. {"changed": 3, "unchanged": 45, "failed": 2, "not_attempted": 0, "uncertain": 0}."""
    counts = dict((name, 0) for name in (CHANGED, UNCHANGED) + UNFINISHED)
    for outcome in outcomes:
        counts[outcome["outcome"]] += 1
    return counts


def failure_message(outcomes, noun):
    """One line naming every device that did not finish, for fail_json's msg."""
    counts = outcome_summary(outcomes)
    unfinished = [o for o in outcomes if o["outcome"] in UNFINISHED]
    details = "; ".join(
        "%s: %s" % (o["identifier"], o.get("reason") or o["outcome"]) for o in unfinished
    )
    return ("%d of %d %s did not reach the desired state (%d changed, %d unchanged, %d failed, %d not attempted,"
            " %d uncertain): %s" % (len(unfinished), len(outcomes), noun, counts[CHANGED], counts[UNCHANGED],
                                    counts[FAILED], counts[NOT_ATTEMPTED], counts[UNCERTAIN], details))
