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
shares one window: the starts are kept in a small state file in this user's own directory under the temp
dir, named by a hash of the scope, holding timestamps only, never a secret or a token, and locked while it
is read and written. Processes on other machines cannot share it; they converge through 429 and Retry-After.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import hashlib
import json
import math
import os
import stat
import tempfile
import threading
import time
import uuid

from ansible.module_utils.common.warnings import warn

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import finite_number, shown

try:
    import fcntl
    HAS_FCNTL = True
except ImportError:  # pragma: no cover - not a POSIX controller: each process keeps its own window
    HAS_FCNTL = False

# A request counts in the window from its start until WINDOW seconds after its answer came: the server
# saw it at some moment in between, so however late it arrived there, a request started once the window
# has let it go arrives at least WINDOW seconds after it. Latency, not a guessed margin, is the cost.
# A request still open after STALE_AFTER seconds (its process died) counts as answered then. No tighter bound
# follows from the transport's timeout: requests applies it to each wait for a byte, not to the whole exchange, so
# a server that trickles its answer keeps a healthy request open longer. A start waiting on such a request looks
# again at least once a window (_wait), so a request that ends early is seen within one window.
STALE_AFTER = 600.0
# How long a start waits before looking again when only requests still in flight hold the window.
IN_FLIGHT_POLL = 0.02
STATE_DIR_NAME = "fleetguard-devices-quota"
# The longest pause a healthy run writes: the transport refuses a Retry-After over 180 s and adds up to 10 %
# jitter (HttpTransport.quota passes its own cap). A pause further ahead is a corrupt or forged state.
MAX_PAUSE = 198.0
# Every timestamp is written with the clock of the process that holds the lock, so none is ahead of the
# next reader's clock by more than the time between two clock readings: more is a clock set back, or forged.
FUTURE_TOLERANCE = 5.0
# A full Graph read window (8,000 entries of about 60 bytes) takes 0.5 MB; a larger file is not one we wrote.
MAX_STATE_BYTES = 2 * 1024 * 1024
# A refused state directory or file makes the quota keep its window in the process: failing every task for a
# hostile temp dir would let any local user stop the runs; the quota still holds within the process (and 429
# with Retry-After still paces the rest), so only the sharing is lost, and the warning says so.
NOT_SHARED = ("the quota is kept by this process alone, not shared with the other processes of this controller;"
              " remove or fix it, or point TMPDIR at a private directory")


def scope_key(*parts):
    """A file-name-safe key for a quota's scope (API, host, app, tenant, operation): a hash, so no id is
    written in clear, and no secret may ever be a part."""
    return hashlib.sha256("\0".join(str(part) for part in parts).encode("utf-8")).hexdigest()[:40]


def state_directory():
    """This user's directory of state files under the temp dir: named by the uid, since other users share the
    temp dir and may have made a directory of the plain name first."""
    return os.path.join(tempfile.gettempdir(), "%s-%d" % (STATE_DIR_NAME, os.geteuid()))


def state_path(key):
    return os.path.join(state_directory(), key + ".json")


class UnsafeState(Exception):
    """A state directory or file this process must not use; the message names it and says why."""


def open_state_file(path):
    """A descriptor of the state file at `path`, both it and its directory created when missing.

    Only a directory and a regular file of this user, writable by no one else, are used, and neither is
    reached through a symbolic link: otherwise another local user could choose the file this process writes.
    The directory is checked on its open descriptor, so it cannot be swapped between the check and the use.
    Raises UnsafeState, or OSError when the temp dir is unusable (read-only, full, ...).
    """
    directory, name = os.path.split(path)
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        pass
    directory_fd = _open_no_link(directory, os.O_RDONLY | os.O_DIRECTORY, directory)
    try:
        _check_own(os.fstat(directory_fd), directory, stat.S_ISDIR, "directory")
        state_fd = _open_no_link(name, os.O_RDWR | os.O_CREAT, path, dir_fd=directory_fd)
    finally:
        os.close(directory_fd)
    try:
        _check_own(os.fstat(state_fd), path, stat.S_ISREG, "regular file")
        return state_fd
    except UnsafeState:
        os.close(state_fd)
        raise


def _open_no_link(path, flags, shown_path, dir_fd=None):
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    except OSError as exc:
        # Linux and macOS say ELOOP for a symbolic link under O_NOFOLLOW, FreeBSD EMLINK.
        if exc.errno in (errno.ELOOP, errno.EMLINK):
            raise UnsafeState("%s is a symbolic link" % shown_path)
        if exc.errno == errno.ENOTDIR:  # Linux, for a symbolic link opened with O_DIRECTORY too
            what = "a symbolic link" if os.path.islink(shown_path) else "not a directory"
            raise UnsafeState("%s is %s" % (shown_path, what))
        raise


def _check_own(status, path, is_kind, kind):
    if not is_kind(status.st_mode):
        raise UnsafeState("%s is not a %s" % (path, kind))
    if status.st_uid != os.geteuid():
        raise UnsafeState("%s is owned by uid %d, not by this user (uid %d)" % (path, status.st_uid, os.geteuid()))
    if status.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafeState("%s is group- or world-writable (mode %04o)" % (path, stat.S_IMODE(status.st_mode)))
    if stat.S_ISREG(status.st_mode) and status.st_nlink != 1:
        raise UnsafeState("%s has %d hard links" % (path, status.st_nlink))


class WindowQuota:
    """At most `limit` requests in any `window` seconds, shared by the threads of a process and, with a
    `key`, by every process of the controller that uses the same key.

    `acquire(cost)` blocks until `cost` more requests fit and returns a ticket; `release(ticket)` says
    the answer came (the request then leaves the window `window` seconds later); `pause(seconds)` holds
    everyone back after the server asked for a wait (at most `max_pause`). `clock` is wall time: processes
    compare timestamps. What no healthy run writes (a pause beyond `max_pause`, a time in the future, a value
    that is no time) is discarded with a warning, never waited out.
    """

    def __init__(self, limit, window, key=None, clock=time.time, sleep=time.sleep, max_pause=MAX_PAUSE):
        self.limit = int(limit)
        self.window = float(window)
        self.max_pause = float(max_pause)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._path = state_path(key) if key and HAS_FCNTL else None
        self._state = dict(requests=[], paused_until=0.0)
        self._problems = []

    def acquire(self, cost=1):
        # A start costing more than the whole window waits for an empty window anyway; counted as the whole
        # window, it is written as no healthy run writes more (_drop_impossible discards more).
        cost = min(max(1, int(cost)), self.limit)
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
        seconds = _bounded(seconds, self.max_pause)
        with self._locked_state() as state:
            state["paused_until"] = max(state["paused_until"], self._clock() + seconds)

    def observe_usage(self, share, hold=None):
        """The server's count of this window, as a share of the limit (Graph's x-ms-throttle-limit-percentage).

        What it counted beyond this controller's own requests (other machines acting for the same app) holds
        room here too, from now for `hold` seconds (at most the window: the latest those requests can leave the
        server's window). So the next starts wait for room the server has, instead of finding out by 429s.
        """
        hold = self.window if hold is None else _bounded(hold, self.window)
        # Graph sends 0.8 to 1.8; any share over 1 already fills the window, so a larger one changes nothing.
        share = _bounded(share, 100.0)
        with self._locked_state() as state:
            now = self._clock()
            self._wait(state, now, 0)  # drops the requests that left the window
            unseen = int(share * self.limit) - sum(request[1] for request in state["requests"])
            if unseen > 0:
                # [ticket, cost, started, answered]: it leaves the window `window` seconds after "answered".
                # More than the limit fills the window no further, and is what no healthy run writes.
                state["requests"].append([uuid.uuid4().hex[:16], min(unseen, self.limit), now,
                                          now + hold - self.window])

    def _leaves_at(self, request):
        answered = request[3]
        if answered is None and request[2] < self._clock() - STALE_AFTER:
            answered = request[2] + STALE_AFTER
        return None if answered is None else answered + self.window

    def _wait(self, state, now, cost):
        """Seconds until `cost` more requests fit (0: now), with the requests that left the window dropped.

        Apart from the server's pause (at most max_pause), no wait is longer than one window, so acquire() looks
        again at least once a window: a request answered or gone stale meanwhile frees its room then.
        """
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
                return min(leaves_at - now, self.window)
        return IN_FLIGHT_POLL

    def _drop_impossible(self, state):
        """Drop what no healthy run writes, whose wait would have no end: a pause further ahead than a server
        may ask, times in the future (a clock set back since they were written, or a forged state), and a request
        costing more than the limit (in flight, it would hold every start back until STALE_AFTER)."""
        now = self._clock()
        affordable = [r for r in state["requests"] if r[1] <= self.limit]
        if len(affordable) < len(state["requests"]):
            self._problems.append("%d requests costing more than the limit of %d"
                                  % (len(state["requests"]) - len(affordable), self.limit))
            state["requests"] = affordable
        if state["paused_until"] > now + self.max_pause:
            self._problems.append("paused_until %.0f s ahead, more than the %.0f s a server may ask for"
                                  % (state["paused_until"] - now, self.max_pause))
            state["paused_until"] = 0.0
        horizon = now + FUTURE_TOLERANCE
        kept = [r for r in state["requests"] if r[2] <= horizon and (r[3] is None or r[3] <= horizon)]
        if len(kept) < len(state["requests"]):
            self._problems.append("%d requests dated in the future (was the clock set back?)"
                                  % (len(state["requests"]) - len(kept)))
            state["requests"] = kept

    def _warn_once_read(self):
        """One warning for what the last read discarded."""
        if self._problems:
            where = "the quota state file %s" % self._path if self._path else "the quota window of this process"
            problems, self._problems = self._problems, []
            warn("%s: discarded %s; a healthy run never writes this" % (where, "; ".join(problems)))

    def _stop_sharing(self, reason):
        self._path = None
        warn("refused the quota state: %s; %s" % (reason, NOT_SHARED))

    def _locked_state(self):
        return _SharedState(self) if self._path else _LocalState(self)


class _LocalState:
    """The window of one process, under the threads' lock."""

    def __init__(self, quota):
        self.quota = quota

    def __enter__(self):
        self.quota._lock.acquire()
        self.quota._drop_impossible(self.quota._state)
        return self.quota._state

    def __exit__(self, *exc_info):
        self.quota._lock.release()
        self.quota._warn_once_read()


class _SharedState:
    """The window in the state file, under the threads' lock and an exclusive file lock."""

    def __init__(self, quota):
        self.quota = quota
        self.handle = None
        self.state = None

    def __enter__(self):
        quota = self.quota
        quota._lock.acquire()
        try:
            self.handle = os.fdopen(open_state_file(quota._path), "r+b")
            fcntl.flock(self.handle.fileno(), fcntl.LOCK_EX)
            self.state, problem = _parse(self.handle.read(MAX_STATE_BYTES + 1))
        except (UnsafeState, IOError, OSError) as exc:
            self._close()
            quota._stop_sharing(str(exc) if isinstance(exc, UnsafeState) else "%s is unusable (%s)"
                                % (os.path.dirname(quota._path), exc.strerror or type(exc).__name__))
            self.state, problem = quota._state, None
        if problem:
            quota._problems.append(problem)
        quota._drop_impossible(self.state)
        return self.state

    def __exit__(self, *exc_info):
        try:
            if self.handle is not None:
                self.handle.seek(0)
                self.handle.truncate()
                self.handle.write(json.dumps(self.state, allow_nan=False).encode("utf-8"))
                self.handle.flush()
        except (IOError, OSError, ValueError):
            pass
        finally:
            self._close()
            self.quota._lock.release()
            self.quota._warn_once_read()

    def _close(self):
        if self.handle is not None:
            try:
                fcntl.flock(self.handle.fileno(), fcntl.LOCK_UN)
            finally:
                self.handle.close()
                self.handle = None


def _parse(data):
    """(state, problem): the state in the file's bytes, and what was discarded from it (None: nothing).

    An empty file is a new one. Only the shape this module writes is kept: {"requests": [[ticket, cost,
    started, answered or None], ...], "paused_until": time}, every time a finite number, every cost an int.
    """
    empty = dict(requests=[], paused_until=0.0)
    if not data:
        return empty, None
    if len(data) > MAX_STATE_BYTES:
        return empty, "the whole state: it is larger than %d bytes" % MAX_STATE_BYTES
    try:
        state = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):  # a write cut short, bytes that are no UTF-8, nesting without end
        return empty, "the whole state: it is not JSON (a write cut short?)"
    if not isinstance(state, dict) or not isinstance(state.get("requests", []), list):
        return empty, "the whole state: it is not an object with a list of requests, but %s" % shown(state)
    problems = []
    paused_until = state.get("paused_until", 0.0)
    if not _is_time(paused_until):
        problems.append("paused_until %s, which is not a time" % shown(paused_until))
        paused_until = 0.0
    entries = state.get("requests", [])
    requests = [list(entry) for entry in entries if _is_request(entry)]
    if len(requests) < len(entries):
        problems.append("%d malformed requests (the first: %s)"
                        % (len(entries) - len(requests), shown(next(e for e in entries if not _is_request(e)))))
    return dict(requests=requests, paused_until=float(paused_until)), "; ".join(problems) or None


def _is_time(value):
    # A JSON number only; JSON integers have no bound, and one of 400 digits is no float, and no time.
    try:
        finite_number(value, text=False)
    except ValueError:
        return False
    return True


def _is_request(entry):
    """[ticket, cost, started, answered or None], as acquire() and observe_usage() write it."""
    if not (isinstance(entry, list) and len(entry) == 4 and isinstance(entry[0], str)):
        return False
    cost = entry[1]
    if isinstance(cost, bool) or not isinstance(cost, int) or cost < 1:
        return False
    return _is_time(entry[2]) and (entry[3] is None or _is_time(entry[3]))


def _bounded(seconds, most):
    """`seconds` between 0 and `most`: a value that is no number, or NaN, counts as 0, infinity as `most`."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or math.isnan(seconds):
        return 0.0
    return min(max(0.0, float(seconds)), most)
