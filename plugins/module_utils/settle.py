# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""Settling writes whose answer was lost, before anything is sent again.

A slow server can answer after the client's timeout and apply the write later still. Where the API has
no version to refuse such a late write (Graph PATCH and DELETE, Feishu DELETE), a write resent at once
could land twice, the late copy undoing a change made since. So the object is read again until the read
shows the write, or until a deadline well past the request timeout; only then may it be sent again.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import UncertainWrite

# Re-read every SETTLE_POLL seconds, for settle_seconds(timeout).
SETTLE_POLL = 1.0
SETTLE_MIN = 30.0
SETTLE_TIMEOUTS = 3


def settle_seconds(timeout):
    """How long a write whose answer was lost is given to show before it is taken as never applied."""
    return max(SETTLE_MIN, SETTLE_TIMEOUTS * timeout)


def settle(read, ids, shows, timeout, now=time.monotonic, sleep=time.sleep):
    """Read `ids` (`read(ids) -> {id: object or None}`) until `shows(object)` holds for each, or the deadline
    (settle_seconds of the request `timeout`) has passed.

    Returns ({id: last read}, [ids that never showed]). `now` and `sleep` are the caller's clock (the client's,
    so tests can inject theirs).
    """
    fresh = read(ids) if ids else {}
    deadline = now() + settle_seconds(timeout)
    waiting = [object_id for object_id in ids if not shows(fresh[object_id])]
    while waiting and now() < deadline:
        sleep(min(SETTLE_POLL, max(0.0, deadline - now())))
        fresh.update(read(waiting))
        waiting = [object_id for object_id in waiting if not shows(fresh[object_id])]
    return fresh, waiting


def give_up(error, never_showed, attempts):
    """The error a device ends with after `attempts` writes: UncertainWrite when `error` is a write whose answer
    was lost and that never showed (it may still land), else `error`, saying every re-read showed no write."""
    if never_showed:
        return UncertainWrite("the answer to one of %d attempts was lost and re-reads did not show it; it may"
                              " still land: check the device before writing it again (%s)" % (attempts, error.message),
                              method=error.method, path=error.path, status=error.status,
                              client_request_id=error.client_request_id)
    error.message = "gave up after %d attempts, each re-read showed the write had not landed: %s" % (
        attempts, error.message)
    return error
