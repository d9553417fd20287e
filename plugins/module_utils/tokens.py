# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""Bearer-token reuse shared by both API clients.

One token serves every thread of a client: it is fetched on first use, reused until shortly before
it expires, and replaced once when the API rejects it (a token can expire in the middle of a long
play). A token the user supplied cannot be replaced, so its rejection is final.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import threading
import time

# Renew a token this many seconds before the issuer says it expires.
EXPIRY_MARGIN = 300


class TokenCache:
    """`fetch()` returns (token, lifetime_seconds); without it, `static_token` is used as is."""

    def __init__(self, fetch=None, static_token=None, clock=time.monotonic, margin=EXPIRY_MARGIN):
        self._fetch = fetch
        self._token = static_token
        self._expires_at = None  # None: lifetime unknown (a static token), never renewed on a timer
        self._clock = clock
        self._margin = margin
        self._lock = threading.Lock()

    @property
    def can_refresh(self):
        return self._fetch is not None

    def get(self):
        with self._lock:
            fresh = self._expires_at is None or self._clock() < self._expires_at
            if self._token and (fresh or not self.can_refresh):
                return self._token
            return self._renew()

    def replace(self, rejected):
        """A new token, unless another thread already replaced the rejected one."""
        with self._lock:
            if self._token != rejected:
                return self._token
            return self._renew()

    def _renew(self):
        token, lifetime = self._fetch()
        self._token = token
        self._expires_at = self._clock() + max(0, int(lifetime or 0) - self._margin)
        return token

    def send(self, request, rejected):
        """`request(token)` once, and once more with a new token if `rejected(response)` says so."""
        token = self.get()
        response = request(token)
        if rejected(response) and self.can_refresh:
            response = request(self.replace(token))
        return response
