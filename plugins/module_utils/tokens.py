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

import re
import threading
import time

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import ApiError, finite_number, shown

# Renew a token this many seconds before the issuer says it expires.
EXPIRY_MARGIN = 300
# What a bearer token may hold (RFC 6750 b64token, and any other visible ASCII character): a value with a space or
# a line break would be refused by requests, whose message quotes the header, token included.
TOKEN_PATTERN = re.compile(r"[\x21-\x7e]+")


# Longest lifetime an issuer's answer is believed: Entra's access tokens live at most a day (configurable token
# lifetimes), managed identity tokens about a day, Feishu's tenant_access_token two hours. A longer one is a broken
# answer, not a token to keep for years.
MAX_LIFETIME = 7 * 24 * 3600


def lifetime_seconds(value):
    """Seconds a token lives, from the issuer's field: a number, or a string of one (managed identity endpoints
    send "3599"), from 0 to MAX_LIFETIME; None when the answer has none. Raises ValueError for anything else."""
    if value is None:
        return None
    seconds = finite_number(value)
    if not 0 <= seconds <= MAX_LIFETIME:
        raise ValueError("out of range")
    return seconds


def lifetime_problem(lifetime, lifetime_field="lifetime"):
    """What is wrong with the lifetime an issuer answered in `lifetime_field`, or None."""
    try:
        lifetime_seconds(lifetime)
    except ValueError:
        return "its %s %s is not a number of seconds from 0 to %d" % (lifetime_field, shown(lifetime), MAX_LIFETIME)
    return None


def token_answer_problem(token, lifetime, token_field="token", lifetime_field="lifetime"):
    """What is wrong with the token and lifetime an issuer answered, or None. The token itself is never shown
    (it may be a working credential); the lifetime is."""
    if token is None or token == "":
        return "it has no %s" % token_field
    if not isinstance(token, str):
        return "its %s is %s, not a string" % (token_field, type(token).__name__)
    if not TOKEN_PATTERN.fullmatch(token):
        return "its %s holds spaces, line breaks or other characters a bearer token cannot hold" % token_field
    return lifetime_problem(lifetime, lifetime_field)


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
        # The clients check their issuers' answers and name the request; this keeps any other fetch honest.
        problem = token_answer_problem(token, lifetime)
        if problem:
            raise ApiError("the token issuer answered with a token this collection cannot use: %s" % problem)
        self._token = token
        # Without a lifetime the token is used for one request at a time and fetched again.
        self._expires_at = self._clock() + max(0.0, (lifetime_seconds(lifetime) or 0.0) - self._margin)
        return token

    def send(self, request, rejected):
        """`request(token)` once, and once more with a new token if `rejected(response)` says so."""
        token = self.get()
        response = request(token)
        if rejected(response) and self.can_refresh:
            response = request(self.replace(token))
        return response
