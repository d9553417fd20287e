"""The access tokens an emulator has issued: what each one stands for and until when.

Both emulators keep their tokens here, so expiry, `expire_tokens()` and `issued_tokens()` mean the
same thing in each. Tokens are looked up, never verified: whatever a token looks like is the
emulator's business.
"""

import threading


class TokenLedger:
    """Thread-safe record of issued tokens. `clock` is called for the current time, so a test
    that replaces its emulator's clock ages every token at once."""

    def __init__(self, clock):
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = {}  # token -> {"expires_at": seconds since the epoch, **what the emulator keeps}
        self._issued = []  # every token ever issued, in order, so tests can look for leaks

    def add(self, token, expires_at, **details):
        """Record a newly issued token; returns a copy of what is kept about it."""
        info = {"expires_at": expires_at, **details}
        with self._lock:
            self._tokens[token] = info
            self._issued.append(token)
            return dict(info)

    def lookup(self, token):
        """What is kept about a token, expired or not; None for a token never issued."""
        with self._lock:
            info = self._tokens.get(token)
            return dict(info) if info is not None else None

    def expired(self, info):
        return info["expires_at"] <= self._clock()

    def valid(self, token):
        """What is kept about a token that has not expired, else None."""
        info = self.lookup(token)
        return None if info is None or self.expired(info) else info

    def expire_all(self):
        """Make every token expired now; returns how many were still valid."""
        now = self._clock()
        with self._lock:
            valid = [info for info in self._tokens.values() if info["expires_at"] > now]
            for info in valid:
                info["expires_at"] = now
            return len(valid)

    def issued(self):
        with self._lock:
            return list(self._issued)
