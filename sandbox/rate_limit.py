"""The emulators' rate limiter: a sliding window per operation and caller, as the APIs count their
published limits (429 with the time until a slot frees up)."""


import collections
import math
import threading
import time
from dataclasses import dataclass


@dataclass
class RateDecision:
    allowed: bool
    limit: int = None  # None when the operation is not limited
    reset: int = 0  # whole seconds until a slot frees up (only when not allowed)
    used: int = 0  # calls counted in the window, this one included (only when allowed)


class RateLimiter:
    """Sliding window per (operation, caller key). Rejected calls do not count.

    A limit is either a count per `WINDOW` seconds or a (count, window seconds) pair;
    `scale` multiplies the counts, never the windows.
    """

    WINDOW = 1.0

    def __init__(self, limits, enabled=True, scale=1.0):
        self.base_limits = dict(limits)
        self.enabled = enabled
        self.scale = scale
        self._lock = threading.Lock()
        self._windows = collections.defaultdict(collections.deque)

    def limit_for(self, operation):
        return self._limit_and_window(operation)[0]

    def window_for(self, operation):
        return self._limit_and_window(operation)[1]

    def _limit_and_window(self, operation):
        base = self.base_limits.get(operation)
        if base is None:
            return None, None
        count, window = base if isinstance(base, (tuple, list)) else (base, self.WINDOW)
        return max(1, int(count * self.scale)), float(window)

    def check(self, operation, key):
        limit, window_seconds = self._limit_and_window(operation)
        if not self.enabled or limit is None:
            return RateDecision(True)
        now = time.monotonic()
        with self._lock:
            window = self._windows[(operation, key)]
            while window and window[0] <= now - window_seconds:
                window.popleft()
            if len(window) >= limit:
                reset = max(1, math.ceil(window[0] + window_seconds - now))
                return RateDecision(False, limit, reset)
            window.append(now)
            used = len(window)
        return RateDecision(True, limit, used=used)

    def configure(self, enabled=None, scale=None, limits=None):
        if enabled is not None:
            self.enabled = bool(enabled)
        if scale is not None:
            self.scale = float(scale)
        if limits is not None:
            self.base_limits.update(limits)
        self.clear()

    def clear(self):
        with self._lock:
            self._windows.clear()
