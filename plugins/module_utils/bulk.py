# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running one piece of work per device, and reporting every device's outcome.

A few worker threads keep requests in flight while the clients' rate limiters keep the pace under
the API's limit: against a real tenant one request takes longer than the limit's spacing, so a
single thread would leave most of the allowed rate unused. Results come back in input order.
A fatal error (credentials gone) stops new work; what never started is reported "not attempted".
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import threading
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import (
    AuthenticationError,
    FleetguardError,
)

CHANGED = "changed"
UNCHANGED = "unchanged"
FAILED = "failed"
NOT_ATTEMPTED = "not_attempted"

DEFAULT_WORKERS = 4


class ItemResult:
    """The result of work on one item: `value` when it succeeded, `error` when it failed."""

    __slots__ = ("item", "value", "error", "attempted")

    def __init__(self, item, value=None, error=None, attempted=True):
        self.item = item
        self.value = value
        self.error = error
        self.attempted = attempted

    @property
    def ok(self):
        return self.attempted and self.error is None


def run_each(items, work, workers=DEFAULT_WORKERS, fatal=(AuthenticationError,)):
    """Call `work(item)` for every item; return ItemResults in input order.

    FleetguardError is caught per item (the other items go on); any other exception is a bug and
    propagates. After a `fatal` error no new item starts.
    """
    items = list(items)
    stop = threading.Event()

    def guarded(item):
        if stop.is_set():
            return ItemResult(item, attempted=False)
        try:
            return ItemResult(item, value=work(item))
        except FleetguardError as exc:
            if isinstance(exc, fatal):
                stop.set()
            return ItemResult(item, error=exc)

    if workers <= 1 or len(items) <= 1:
        return [guarded(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(guarded, items))


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
    """{object id: Change} from run_each results whose values are Changes."""
    changes = {}
    for result in results:
        if not result.attempted:
            changes[result.item[id_key]] = Change(result.item, attempted=False)
        elif result.error is not None:
            changes[result.item[id_key]] = Change(result.item, error=result.error)
        else:
            changes[result.item[id_key]] = result.value
    return changes


def report(values, matches, changes, id_key, noun, diff_of=None):
    """The parts of a module result, in input order, from what happened to each object.

    Returns (failed, objects, result) where objects holds each value's object after the task and
    result has changed, changed ids, outcomes, summary, diff (when `diff_of` is given) and, on
    failure, a msg naming every device that did not finish.
    """
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
            outcome.update(outcome=FAILED, reason=str(change.error))
            objects.append(change.before)
        else:
            outcome["outcome"] = CHANGED if change.changed else UNCHANGED
            objects.append(change.after)
            if change.changed and object_id not in changed_ids:
                changed_ids.append(object_id)
                if diff_of is not None:
                    diffs.append(diff_of(change))
        outcomes.append(outcome)
    result = dict(changed=bool(changed_ids), changed_ids=changed_ids, outcomes=outcomes,
                  summary=outcome_summary(outcomes))
    if diff_of is not None:
        result["diff"] = diffs
    failed = any(o["outcome"] in (FAILED, NOT_ATTEMPTED) for o in outcomes)
    if failed:
        result["msg"] = failure_message(outcomes, noun)
    return failed, objects, result


def outcome_summary(outcomes):
    """Counts by outcome, e.g. {"changed": 3, "unchanged": 45, "failed": 2, "not_attempted": 0}."""
    counts = dict((name, 0) for name in (CHANGED, UNCHANGED, FAILED, NOT_ATTEMPTED))
    for outcome in outcomes:
        counts[outcome["outcome"]] += 1
    return counts


def failure_message(outcomes, noun):
    """One line naming every device that did not finish, for fail_json's msg."""
    counts = outcome_summary(outcomes)
    unfinished = [o for o in outcomes if o["outcome"] in (FAILED, NOT_ATTEMPTED)]
    details = "; ".join(
        "%s: %s" % (o["identifier"], o.get("reason") or o["outcome"]) for o in unfinished
    )
    return "%d of %d %s did not reach the desired state (%d changed, %d unchanged, %d failed, %d not attempted): %s" % (
        len(unfinished), len(outcomes), noun, counts[CHANGED], counts[UNCHANGED], counts[FAILED],
        counts[NOT_ATTEMPTED], details)
