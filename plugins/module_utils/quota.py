# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""Window quotas with the APIs' own semantics: at most `limit` request starts in any `window` seconds.

A quota is spent as fast as the requests' latency allows, and slows down only on the server's word
(`pause()` after a `Retry-After`; `observe_usage()` when Graph says how full its window is): a 3,000-per-150-s write quota lets 1,000 writes go at once, where a
fixed spacing of 20 per second would make them wait 50 s for nothing. A request holds its place in the
window from its start until `window` seconds after its answer, so the server, which counts arrivals,
never sees more than `limit` in any window whatever the latency.

| API | operation | limit | window | scope |
|---|---|---|---|---|
| Feishu / Lark | update, list, delete, create | 10 | 1 s | app x tenant |
| Feishu / Lark | get | 50 | 1 s | app x tenant |
| Graph | device writes, app-only | 3,000 | 150 s | app x tenant |
| Graph | device writes, delegated | 25 | 10 s | user x tenant |
| Graph | reads (resource units) | 3,500 / 5,000 / 8,000 | 10 s | app x tenant, by tenant size |

(https://open.feishu.cn/document/server-docs/api-call-guide/frequency-control,
https://learn.microsoft.com/en-us/graph/throttling-limits#identity-and-access-service-limits)

Every process that acts for the same app and tenant on one controller (forks, loops, concurrent jobs)
shares one window: the starts are kept in a small state file under the temp dir, named by a hash of the
scope, holding timestamps only, never a secret or a token, and locked while it is read and written.
Processes on other machines cannot share it; they converge through 429 and Retry-After.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import tempfile
import threading
import time
import uuid

try:
    import fcntl
    HAS_FCNTL = True
except ImportError:  # pragma: no cover - not a POSIX controller: each process keeps its own window
    HAS_FCNTL = False

# A request counts in the window from its start until WINDOW seconds after its answer came: the server
# saw it at some moment in between, so however late it arrived there, a request started once the window
# has let it go arrives at least WINDOW seconds after it. Latency, not a guessed margin, is the cost.
# A request still open after STALE_AFTER seconds (its process died) counts as answered then.
STALE_AFTER = 600.0
# How long a start waits before looking again when only requests still in flight hold the window.
IN_FLIGHT_POLL = 0.02
STATE_DIR_NAME = "fleetguard-devices-quota"


def scope_key(*parts):
    """A file-name-safe key for a quota's scope (API, host, app, tenant, operation): a hash, so no id is
    written in clear, and no secret may ever be a part."""
    return hashlib.sha256("\0".join(str(part) for part in parts).encode("utf-8")).hexdigest()[:40]


def state_path(key):
    directory = os.path.join(tempfile.gettempdir(), STATE_DIR_NAME)
    try:
        os.makedirs(directory, mode=0o700)
    except OSError:
        pass
    return os.path.join(directory, key + ".json")


class WindowQuota:
    """At most `limit` requests in any `window` seconds, shared by the threads of a process and, with a
    `key`, by every process of the controller that uses the same key.

    `acquire(cost)` blocks until `cost` more requests fit and returns a ticket; `release(ticket)` says
    the answer came (the request then leaves the window `window` seconds later); `pause(seconds)` holds
    everyone back after the server asked for a wait. `clock` is wall time: processes compare timestamps.
    """

    def __init__(self, limit, window, key=None, clock=time.time, sleep=time.sleep):
        self.limit = int(limit)
        self.window = float(window)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._path = state_path(key) if key and HAS_FCNTL else None
        self._state = dict(requests=[], paused_until=0.0)

    def acquire(self, cost=1):
        cost = max(1, int(cost))
        while True:
            with self._locked_state() as state:
                now = self._clock()
                wait = self._wait(state, now, cost)
                if wait <= 0:
                    ticket = uuid.uuid4().hex[:16]
                    # [ticket, cost, started, answered (None while in flight)]
                    state["requests"].append([ticket, cost, now, None])
                    return ticket
            self._sleep(wait)

    def release(self, ticket):
        with self._locked_state() as state:
            now = self._clock()
            for request in state["requests"]:
                if request[0] == ticket:
                    request[3] = now

    def pause(self, seconds):
        with self._locked_state() as state:
            state["paused_until"] = max(state["paused_until"], self._clock() + seconds)

    def observe_usage(self, share, hold=None):
        """The server's count of this window, as a share of the limit (Graph's x-ms-throttle-limit-percentage).

        What it counted beyond this controller's own requests (other machines acting for the same app) holds
        room here too, from now for `hold` seconds (at most the window: the latest those requests can leave the
        server's window). So the next starts wait for room the server has, instead of finding out by 429s.
        """
        hold = self.window if hold is None else min(float(hold), self.window)
        with self._locked_state() as state:
            now = self._clock()
            self._wait(state, now, 0)  # drops the requests that left the window
            unseen = int(share * self.limit) - sum(request[1] for request in state["requests"])
            if unseen > 0:
                # [ticket, cost, started, answered]: it leaves the window `window` seconds after "answered".
                state["requests"].append([uuid.uuid4().hex[:16], unseen, now, now + hold - self.window])

    def _leaves_at(self, request):
        answered = request[3]
        if answered is None and request[2] < self._clock() - STALE_AFTER:
            answered = request[2] + STALE_AFTER
        return None if answered is None else answered + self.window

    def _wait(self, state, now, cost):
        """Seconds until `cost` more requests fit (0: now), with the requests that left the window dropped."""
        state["requests"] = [r for r in state["requests"] if self._leaves_at(r) is None or self._leaves_at(r) > now]
        if state["paused_until"] > now:
            return state["paused_until"] - now
        used = sum(request[1] for request in state["requests"])
        if used + cost <= self.limit or used == 0:
            return 0.0
        leaving = sorted(state["requests"], key=lambda r: (self._leaves_at(r) is None, self._leaves_at(r) or 0))
        for request in leaving:
            leaves_at = self._leaves_at(request)
            if leaves_at is None:
                # Only requests still waiting for their answer hold the room: look again shortly.
                return IN_FLIGHT_POLL
            used -= request[1]
            if used + cost <= self.limit or used == 0:
                return leaves_at - now
        return IN_FLIGHT_POLL

    def _locked_state(self):
        return _SharedState(self) if self._path else _LocalState(self)


class _LocalState:
    """The window of one process, under the threads' lock."""

    def __init__(self, quota):
        self.quota = quota

    def __enter__(self):
        self.quota._lock.acquire()
        return self.quota._state

    def __exit__(self, *exc_info):
        self.quota._lock.release()


class _SharedState:
    """The window in the state file, under the threads' lock and an exclusive file lock."""

    def __init__(self, quota):
        self.quota = quota
        self.handle = None
        self.state = None

    def __enter__(self):
        self.quota._lock.acquire()
        try:
            fd = os.open(self.quota._path, os.O_RDWR | os.O_CREAT, 0o600)
            self.handle = os.fdopen(fd, "r+")
            fcntl.flock(self.handle.fileno(), fcntl.LOCK_EX)
            self.state = _parse(self.handle.read())
        except (IOError, OSError):
            # An unusable state file (read-only temp dir, ...): this process keeps its own window.
            self._close()
            self.state = self.quota._state
        return self.state

    def __exit__(self, *exc_info):
        try:
            if self.handle is not None:
                self.handle.seek(0)
                self.handle.truncate()
                self.handle.write(json.dumps(self.state))
                self.handle.flush()
        except (IOError, OSError):
            pass
        finally:
            self._close()
            self.quota._lock.release()

    def _close(self):
        if self.handle is not None:
            try:
                fcntl.flock(self.handle.fileno(), fcntl.LOCK_UN)
            finally:
                self.handle.close()
                self.handle = None


def _parse(text):
    """The state in the file, or an empty one when the file is new or unreadable (a crash mid-write)."""
    try:
        state = json.loads(text) if text else {}
        requests = [[str(ticket), int(cost), float(started), None if answered is None else float(answered)]
                    for ticket, cost, started, answered in state.get("requests", [])]
        return dict(requests=requests, paused_until=float(state.get("paused_until", 0.0)))
    except (ValueError, TypeError, AttributeError):
        return dict(requests=[], paused_until=0.0)
