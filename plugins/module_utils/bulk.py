# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""Running one piece of work per item on a few threads, results in input order.

A few worker threads keep requests in flight while the clients' quotas keep the pace under
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

DEFAULT_WORKERS = 4


class ItemResult:
    """The result of work on one item: `value` when it succeeded, `error` when it failed."""

    __slots__ = ("item", "value", "error", "attempted")

    def __init__(self, item, value=None, error=None, attempted=True):
        self.item = item
        self.value = value
        self.error = error
        self.attempted = attempted


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
