# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""HTTP transport shared by both API clients.

One keep-alive `requests.Session` per client, timeouts, TLS verification, bounded retries with
`Retry-After` (or Feishu's `x-ogw-ratelimit-reset`) and jittered exponential backoff, and the quotas
(quota.py: at most N request starts in any W seconds, shared by the processes of one controller) that
keep bulk runs inside the APIs' limits instead of provoking 429s. Graph's count of a window
(`x-ms-throttle-limit-percentage`) is handed to the request's quota (observe_usage).

Writes are retried here only when the server says it did not apply them (429). A write that met a
connection error, a timeout or a 5xx raises TransientError(maybe_applied=True): the client re-reads
the object before trying again, so a change is never written twice.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import math
import random
import re
import time
import traceback

from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import quote, urlparse

REQUESTS_IMPORT_ERROR = None
try:
    import requests
    from requests.adapters import HTTPAdapter
    HAS_REQUESTS = True
except ImportError:  # pragma: no cover - reported by the module with missing_required_lib
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = traceback.format_exc()

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import (
    ApiError,
    InputError,
    TransientError,
    finite_number,
    shown,
    shown_text,
)
from ansible_collections.fleetguard.devices.plugins.module_utils.quota import WindowQuota

USER_AGENT = "fleetguard.devices/0.1.0"
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
# Graph's count of a quota's window as a share of its limit, sent on answers above 80 % use (0.8 to 1.8):
# https://learn.microsoft.com/en-us/graph/throttling-limits#identity-and-access-service-limits
# The page does not say which of the limits a request counts against the header speaks for, so the room it
# shows taken is held for at most USAGE_HOLD seconds, the shortest of those windows (resource units, and
# delegated device writes, are counted per 10 s): read for a longer window, it would stall a run for nothing.
USAGE_HEADER = "x-ms-throttle-limit-percentage"
USAGE_HOLD = 10.0
# A wait in seconds as HTTP writes it (delay-seconds = 1*DIGIT), with the decimals Graph sends (0.249): ASCII
# digits only, since float() also takes "1_0", "1e1", "inf" and digits of other scripts ("\u0661\u0660" is 10).
DELAY_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?\Z")
# The characters of an HTTP-date (IMF-fixdate and the obsolete forms): the email parser reads its fields with int().
HTTP_DATE_CHARACTERS = re.compile(r"[A-Za-z0-9 ,:-]+\Z")


def path_segment(value):
    """Quote one path segment so no value can add a segment, a query, or a dot-segment.

    urllib3 removes literal `.`/`..` segments from paths, so dots are encoded too.
    """
    return quote(str(value), safe="").replace(".", "%2E")


class Response:
    """What the clients need from an HTTP answer: status, headers and the parsed JSON body (or None)."""

    def __init__(self, status, headers, text):
        self.status = status
        self.headers = headers
        try:
            self.json = json.loads(text) if text else None
        except ValueError:
            self.json = None


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


def server_usage(headers):
    """The share of its limit the server says the request's quota window holds (USAGE_HEADER), or None."""
    try:
        share = finite_number(header_value(headers, USAGE_HEADER))
    except ValueError:
        return None
    return share if 0.0 < share < 100.0 else None


def observe_usage(quota, headers):
    """Tell `quota` what the server counted in its window, when the answer says (see WindowQuota)."""
    share = server_usage(headers)
    if quota is not None and share is not None:
        quota.observe_usage(share, hold=USAGE_HOLD)


def check_retry_after(wait, method, path):
    """Refuse to wait longer than MAX_RETRY_AFTER: the device fails clearly instead of stalling the play."""
    if wait is not None and wait > MAX_RETRY_AFTER:
        raise TransientError("the server asked to wait %d s before retrying, more than the %d s a task waits;"
                             " run the task again later" % (wait, MAX_RETRY_AFTER), method=method, path=path,
                             status=429)


def _location(answer):
    """Where a redirect points, without its query (which may carry a code or a token)."""
    target = urlparse(answer.headers.get("Location") or "")
    return "%s://%s%s" % (target.scheme, target.netloc, target.path) if target.netloc else (target.path or "nowhere")


def check_endpoint(url, name):
    """Refuse an endpoint option that is not an http(s) URL with a host (an injected variable without its scheme,
    a file: URL): the request would otherwise fail with no word of where the address came from."""
    parts = urlparse(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError("%s %s is not an http(s) URL with a host" % (name, shown_text(repr(url))))
    return url


class HttpTransport:
    """Sends requests to one API host with retries and rate limiting. Holds no credentials."""

    def __init__(self, base_url=None, timeout=30, validate_certs=True, max_retries=5,
                 backoff_base=0.5, backoff_cap=30.0, pool_size=8, sleep=time.sleep, clock=time.monotonic,
                 wall_clock=time.time):
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < math.inf:
            raise InputError("timeout must be a number of seconds greater than 0, not %s" % shown(timeout))
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise InputError("max_retries must be 0 or more, not %s" % shown(max_retries))
        # Without a base_url every path must be an absolute URL (Graph: the authority and Graph hosts).
        self.base_url = base_url.rstrip("/") if base_url else None
        self.validate_certs = validate_certs
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.sleep = sleep
        self.clock = clock
        # Quotas shared between processes compare wall-clock timestamps.
        self.wall_clock = wall_clock
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        # Our own retry loop decides what is safe to resend; urllib3 must not resend behind our back.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)

    def quota(self, limit, window, key=None):
        """A WindowQuota on this transport's clock and sleep (tests inject theirs); with a `key`, shared by
        every process of the controller that uses the same key. It holds no pause longer than a server may
        ask for here: one further ahead in a shared state is discarded, not waited out."""
        return WindowQuota(limit, window, key=key, clock=self.wall_clock, sleep=self.sleep,
                           max_pause=MAX_RETRY_AFTER * (1 + RETRY_JITTER))

    def backoff(self, attempt):
        """Full-jitter exponential backoff, capped."""
        return random.uniform(0, min(self.backoff_cap, self.backoff_base * (2 ** min(attempt, MAX_DOUBLINGS))))

    def url(self, path):
        if path.startswith("http://") or path.startswith("https://"):
            return path
        if self.base_url is None:
            raise ValueError("a relative path needs a transport with a base_url: %s" % path)
        return self.base_url + path

    def request(self, method, path, params=None, json_body=None, data=None, headers=None, quota=None,
                idempotent=None, throttled=None):
        """Send a request; return a Response for any status that is not retried away.

        Raises TransientError when retries run out, or at once for a write whose answer was lost.
        `path` may be absolute (a `@odata.nextLink`); errors name only the path, never headers.
        `idempotent=True` marks a POST that is safe to resend (a token request). `throttled(response)`
        tells a throttling answer the status does not show (Feishu's code 99991400 under HTTP 200 or 400).
        """
        method = method.upper()
        is_write = (method not in SAFE_METHODS) if idempotent is None else not idempotent
        url = self.url(path)
        error_path = path.split("?", 1)[0] if path.startswith("/") else urlparse(path).path
        attempt = 0
        while True:
            ticket = quota.acquire() if quota is not None else None
            try:
                answer = self._send(method, url, error_path, is_write, attempt, params=params, json=json_body,
                                    data=data, headers=headers)
            finally:
                if ticket is not None:
                    quota.release(ticket)
            if answer is None:
                # A read whose connection failed: back off and try again.
                self.sleep(self.backoff(attempt))
                attempt += 1
                continue
            response = Response(answer.status_code, answer.headers, answer.text)
            observe_usage(quota, response.headers)
            if 300 <= response.status < 400:
                raise ApiError("the server redirected the request to %s; this collection does not follow redirects:"
                               " check the API's base URL" % _location(answer), method=method, path=error_path,
                               status=response.status)
            is_throttled = response.status == 429 or (throttled is not None and throttled(response))
            if not is_throttled and response.status not in RETRIABLE_STATUSES:
                return response
            if not is_throttled and is_write:
                # A 5xx after a write: the server may or may not have applied it.
                return response
            if attempt >= self.max_retries:
                return response
            wait = retry_after_seconds(response.headers)
            check_retry_after(wait, method, error_path)
            if wait is None:
                wait = self.backoff(attempt)
            else:
                wait = wait + random.uniform(0, RETRY_JITTER * max(wait, 0.1))
            if quota is not None and is_throttled:
                # Every thread and process that shares the quota holds back, not only this request.
                quota.pause(wait)
            else:
                self.sleep(wait)
            attempt += 1

    def _send(self, method, url, error_path, is_write, attempt, **kwargs):
        """One HTTP exchange: the requests answer, or None for a read to retry; every failure of requests
        becomes one of the collection's errors, so no traceback reaches the user."""
        try:
            # verify per request: requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override the session's.
            return self.session.request(method, url, timeout=self.timeout, allow_redirects=False,
                                        verify=self.validate_certs, **kwargs)
        except requests.exceptions.SSLError as exc:
            # A certificate that does not verify will not verify on the next try either.
            raise ApiError("the TLS certificate of %s could not be verified (%s); set validate_certs=false only for a"
                           " test endpoint you trust" % (urlparse(url).netloc, _first_line(exc)),
                           method=method, path=error_path)
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                requests.exceptions.ChunkedEncodingError) as exc:
            reason = "connection failed (%s)" % type(exc).__name__
            if is_write:
                raise TransientError("%s before an answer to a write arrived" % reason,
                                     maybe_applied=True, method=method, path=error_path)
            if attempt >= self.max_retries:
                raise TransientError("%s; gave up after %d attempts" % (reason, attempt + 1),
                                     method=method, path=error_path)
            return None
        except requests.exceptions.InvalidHeader:
            # requests quotes the refused value, which may be a token: name the header only.
            names = ", ".join(sorted(name for name, value in (kwargs.get("headers") or {}).items()
                                     if not _valid_header_value(value))) or "a header"
            raise InputError("the request could not be sent: the value of %s holds a line break, leading whitespace"
                             " or another character HTTP does not allow (a token or id with a stray space or newline?)"
                             % names, method=method, path=error_path)
        except (requests.exceptions.RequestException, ValueError) as exc:
            # A malformed URL or header value: nothing was sent.
            raise InputError("the request could not be sent (%s: %s)" % (type(exc).__name__, _first_line(exc)),
                             method=method, path=error_path)

    def close(self):
        self.session.close()


def _valid_header_value(value):
    """Whether requests sends `value` as a header value: text that starts with no whitespace and holds no line break
    (requests.utils.check_header_validity)."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return isinstance(value, str) and not re.match(r"\s", value) and not re.search(r"[\r\n\x00]", value)


def _first_line(exc):
    """The first line of an exception's text, short: urllib3 nests whole reprs in its messages."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."
