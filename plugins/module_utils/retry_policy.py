# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""When an answer is sent again, and after how long: one decision for single requests and `$batch` parts alike.

A throttled answer (429, or an API's own throttling code the client recognised) is always safe to send again:
the server did not apply it. A 5xx is sent again only for a read; a write that met one may have landed, so
the client re-reads before writing again. A part refused for an expired token is sent again, at once, once the
token is replaced. The wait is the server's (`Retry-After`, Feishu's `x-ogw-ratelimit-reset`), else a
full-jitter exponential backoff; a server that asks for more than MAX_RETRY_AFTER is not waited for.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import random
import re

from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

SAFE_METHODS = frozenset(["GET", "HEAD", "OPTIONS"])
RETRIABLE_STATUSES = frozenset([429, 500, 502, 503, 504])
# Headers that name how long to wait before retrying, in the order they are trusted.
RETRY_AFTER_HEADERS = ("Retry-After", "x-ogw-ratelimit-reset")
# The longest wait a server may ask for before a request gives up instead (seconds).
MAX_RETRY_AFTER = 180
# A server's wait is lengthened by up to this share, so that the requests it held back do not all come at once.
RETRY_JITTER = 0.1
# How a wait without end (`1e999`, `Infinity`) is read: far beyond the cap, and still a number every check and
# message can handle.
ENDLESS_WAIT = 1e9
# Backoff doubles per attempt up to this many times: enough to reach any cap, and no float overflow.
MAX_DOUBLINGS = 64
# A wait in seconds as HTTP writes it (delay-seconds = 1*DIGIT), with the decimals Graph sends (0.249): ASCII
# digits only, since float() also takes "1_0", "1e1", "inf" and digits of other scripts ("\u0661\u0660" is 10).
DELAY_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?\Z")
# The characters of an HTTP-date (IMF-fixdate and the obsolete forms): the email parser reads its fields with int().
HTTP_DATE_CHARACTERS = re.compile(r"[A-Za-z0-9 ,:-]+\Z")


def is_write(method, idempotent=None):
    """Whether a request may change something, so that a lost answer must not be resent blindly.
    `idempotent=True` marks a POST that is safe to resend (a token request, a $batch of reads)."""
    return (method.upper() not in SAFE_METHODS) if idempotent is None else not idempotent


class Decision:
    """What to do with an answer: `retry` after `wait` seconds (`asked`: the server's own wait, not a backoff), or
    keep it. `too_long` is the wait the server asked for when it was more than MAX_RETRY_AFTER (the answer is then
    kept: the task fails instead of stalling)."""

    __slots__ = ("retry", "wait", "asked", "too_long")

    def __init__(self, retry=False, wait=None, asked=False, too_long=None):
        self.retry = retry
        self.wait = wait
        self.asked = asked
        self.too_long = too_long


class RetryPolicy:
    """How often and how long to retry: bounded attempts, the server's wait, else full-jitter backoff."""

    def __init__(self, max_retries=5, backoff_base=0.5, backoff_cap=30.0):
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap

    def backoff(self, attempt):
        """Full-jitter exponential backoff, capped."""
        return random.uniform(0, min(self.backoff_cap, self.backoff_base * (2 ** min(attempt, MAX_DOUBLINGS))))

    def decide(self, status, headers, attempt, write, throttled=False, token_renewed=False):
        """The Decision for an answer of `status` (None: no answer) to the `attempt`-th try (0 first).

        `throttled`: the API said so another way than 429 (Feishu's code under HTTP 200); `token_renewed`: the
        answer refused an expired token that has just been replaced (a $batch part: never applied).
        """
        throttled = throttled or status == 429
        retriable = throttled or token_renewed or (status in RETRIABLE_STATUSES and not write)
        if not retriable or attempt >= self.max_retries:
            return Decision()
        wait = 0.0 if token_renewed else retry_after_seconds(headers)
        if wait is not None and wait > MAX_RETRY_AFTER:
            return Decision(too_long=wait)
        if wait is None:
            return Decision(True, self.backoff(attempt))
        return Decision(True, wait, asked=not token_renewed)


def spread(wait):
    """A server's wait, lengthened by up to RETRY_JITTER so that the requests it held back do not all come at once."""
    return wait + random.uniform(0, RETRY_JITTER * max(wait, 0.1))


def retry_after_seconds(headers, now=None):
    """Seconds the server asked us to wait, or None.

    `Retry-After` is either seconds (Graph may send decimals: 0.249) or an HTTP-date
    (https://www.rfc-editor.org/rfc/rfc9110#field.retry-after); `x-ogw-ratelimit-reset` is seconds. A value
    that is neither (NaN, "1e1", a list in a batch answer's JSON) is skipped; the wait is between 0 and
    ENDLESS_WAIT. Names are matched in any case: a batch answer's headers are a plain JSON object.
    """
    for name in RETRY_AFTER_HEADERS:
        seconds = _delay_seconds(header_value(headers, name), now)
        if seconds is not None:
            return min(max(0.0, seconds), ENDLESS_WAIT)
    return None


def header_value(headers, name):
    """The value of the header `name` in any case, or None: HTTP names are case-insensitive, and a batch answer's
    headers are a plain JSON object, not requests' case-insensitive mapping."""
    headers = headers or {}
    if name in headers:
        return headers[name]
    name = name.lower()
    return next((value for key, value in headers.items() if isinstance(key, str) and key.lower() == name), None)


def _delay_seconds(value, now):
    """The seconds a header value says, or None; a batch answer's headers are JSON, so numbers come too."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    if isinstance(value, str):
        text = value.strip(" \t")  # the optional whitespace around a field value
        if not DELAY_SECONDS.match(text):
            return _seconds_until(text, now) if HTTP_DATE_CHARACTERS.match(text) else None
        value = text
    try:
        seconds = float(value)
    except OverflowError:  # an int of 400 digits
        return ENDLESS_WAIT
    return None if math.isnan(seconds) else seconds


def _seconds_until(text, now):
    """Seconds from `now` to the HTTP-date `text`, or None when it is no date."""
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = datetime.now(timezone.utc) if now is None else now
    return (when - now).total_seconds()
