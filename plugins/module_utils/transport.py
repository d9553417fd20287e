# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""HTTP transport shared by both API clients.

One keep-alive `requests.Session` per client, timeouts, TLS verification, bounded retries as retry_policy.py
decides them, and the quotas (quota.py: at most N request starts in any W seconds, shared by the processes of
one controller) that keep bulk runs inside the APIs' limits instead of provoking 429s. The transport owns the
quotas: a client defines them once (define_quota) and each request names the ones it counts against; the
transport acquires them per attempt, pauses them on throttling and hands them Graph's count of a window
(`x-ms-throttle-limit-percentage`, observe_usage). It reads no API's body: a client that sees throttling in one
asks wait_to_resend() and sends again.

Writes are retried here only when the server says it did not apply them (429). A write that met a
connection error, a timeout or a 5xx raises TransientError(maybe_applied=True): the client re-reads
the object before trying again, so a change is never written twice.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import math
import re
import threading
import time
import traceback

from urllib.parse import quote, urlparse

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import (
    ApiError,
    InputError,
    TransientError,
    finite_number,
    shown,
    shown_text,
)
from ansible_collections.fleetguard.devices.plugins.module_utils.quota import WindowQuota
from ansible_collections.fleetguard.devices.plugins.module_utils.retry_policy import (
    MAX_RETRY_AFTER,
    RETRY_JITTER,
    RetryPolicy,
    header_value,
    is_write,
    spread,
)

REQUESTS_IMPORT_ERROR = None
try:
    import requests
    from requests.adapters import HTTPAdapter
    HAS_REQUESTS = True
except ImportError:  # pragma: no cover - reported by the module with missing_required_lib
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = traceback.format_exc()

# The collection's version, as galaxy.yml has it (a unit test keeps them equal): servers see it in the User-Agent.
COLLECTION_VERSION = "1.0.0"
USER_AGENT = "fleetguard.devices/" + COLLECTION_VERSION
# Graph's count of a quota's window as a share of its limit, sent on answers above 80 % use (0.8 to 1.8):
# https://learn.microsoft.com/en-us/graph/throttling-limits#identity-and-access-service-limits
# The page does not say which of the limits a request counts against the header speaks for, so the room it
# shows taken is held for at most USAGE_HOLD seconds, the shortest of those windows (resource units, and
# delegated device writes, are counted per 10 s): read for a longer window, it would stall a run for nothing.
USAGE_HEADER = "x-ms-throttle-limit-percentage"
USAGE_HOLD = 10.0


def path_segment(value):
    """Quote one path segment so no value can add a segment, a query, or a dot-segment.

    urllib3 removes literal `.`/`..` segments from paths, so dots are encoded too.
    """
    return quote(str(value), safe="").replace(".", "%2E")


class Response:
    """What the clients need from an HTTP answer: status, headers, the parsed JSON body (or None) and the attempt."""

    def __init__(self, status, headers, text, attempt=0):
        self.status = status
        self.headers = headers
        # Which try this answered (0: the first), so that a client that sends again keeps counting.
        self.attempt = attempt
        try:
            self.json = json.loads(text) if text else None
        except ValueError:
            self.json = None


def server_usage(headers):
    """The share of its limit the server says the request's quota window holds (USAGE_HEADER), or None."""
    try:
        share = finite_number(header_value(headers, USAGE_HEADER))
    except ValueError:
        return None
    return share if 0.0 < share < 100.0 else None


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


class ApiClient:
    """What both API clients (FeishuClient, GraphClient) tell of the transport they send through."""

    transport = None

    @property
    def timeout(self):
        """Seconds a request may take: how long a write whose answer was lost may still be on its way (settle.py)."""
        return self.transport.timeout

    @property
    def clock(self):
        """(now, sleep) of this client's waits: time.monotonic and time.sleep, or a test's own."""
        return self.transport.clock, self.transport.sleep


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
        self.retry = RetryPolicy(max_retries, backoff_base, backoff_cap)
        self.sleep = sleep
        self.clock = clock
        # Quotas shared between processes compare wall-clock timestamps.
        self.wall_clock = wall_clock
        # The quotas of this API by name (the client defines them once); requests name the ones they count against.
        self.quotas = {}
        self._quotas_lock = threading.Lock()
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        # Our own retry loop decides what is safe to resend; urllib3 must not resend behind our back.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)

    # --- quotas ---------------------------------------------------------------------------------

    def define_quota(self, name, limit, window, key=None):
        """The WindowQuota `name` (made on first use, on this transport's clock and sleep; tests inject theirs);
        with a `key`, shared by every process of the controller that uses the same key. It holds no pause longer
        than a server may ask for here: one further ahead in a shared state is discarded, not waited out."""
        with self._quotas_lock:
            if name not in self.quotas:
                self.quotas[name] = WindowQuota(limit, window, key=key, clock=self.wall_clock, sleep=self.sleep,
                                                max_pause=MAX_RETRY_AFTER * (1 + RETRY_JITTER))
            return self.quotas[name]

    def pause(self, quota, seconds):
        """Hold back every request that counts against `quota` (a name or {name: cost}), in every thread and process."""
        for name, dummy in _charges(quota):
            self.quotas[name].pause(seconds)

    def observe_usage(self, quota, headers):
        """Tell `quota` what the server counted in its window, when the answer says (USAGE_HEADER; see WindowQuota)."""
        share = server_usage(headers)
        if share is not None:
            for name, dummy in _charges(quota):
                self.quotas[name].observe_usage(share, hold=USAGE_HOLD)

    def backoff(self, attempt):
        return self.retry.backoff(attempt)

    def url(self, path):
        if path.startswith("http://") or path.startswith("https://"):
            return path
        if self.base_url is None:
            raise ValueError("a relative path needs a transport with a base_url: %s" % path)
        return self.base_url + path

    # --- requests -------------------------------------------------------------------------------

    def request(self, method, path, params=None, json_body=None, data=None, headers=None, quota=None,
                idempotent=None, first_attempt=0):
        """Send a request; return a Response for any status that is not retried away.

        Raises TransientError when retries run out, or at once for a write whose answer was lost.
        `path` may be absolute (a `@odata.nextLink`); errors name only the path, never headers.
        `quota` names the quota (or {name: cost}) each attempt counts against. `idempotent=True` marks a POST
        that is safe to resend (a token request). `first_attempt` carries on the count of a client that sends
        again after an answer only it can read as throttled (wait_to_resend).
        """
        method = method.upper()
        write = is_write(method, idempotent)
        url = self.url(path)
        error_path = _error_path(path)
        attempt = first_attempt
        while True:
            response = self._exchange(method, url, error_path, write, attempt, quota, params=params, json=json_body,
                                      data=data, headers=headers)
            if response is None:
                # A read whose connection failed: back off and try again.
                self.sleep(self.retry.backoff(attempt))
            elif not self._wait_to_resend(response, method, error_path, write, quota, throttled=False):
                return response
            attempt += 1

    def wait_to_resend(self, response, method, path, idempotent=None, quota=None, throttled=False):
        """Whether to send again after `response`, having waited as the retry policy says (see request()).

        For a client that reads throttling in the body (`throttled`): the transport only returns what it saw.
        """
        return self._wait_to_resend(response, method.upper(), _error_path(path), is_write(method, idempotent), quota,
                                    throttled)

    def _wait_to_resend(self, response, method, error_path, write, quota, throttled):
        throttled = throttled or response.status == 429
        decision = self.retry.decide(response.status, response.headers, response.attempt, write, throttled=throttled)
        if decision.too_long is not None:
            # The device fails clearly instead of stalling the play.
            raise TransientError("the server asked to wait %d s before retrying, more than the %d s a task waits;"
                                 " run the task again later" % (decision.too_long, MAX_RETRY_AFTER), method=method,
                                 path=error_path, status=429)
        if not decision.retry:
            return False
        wait = spread(decision.wait) if decision.asked else decision.wait
        if quota is not None and throttled:
            # Every thread and process that shares the quota holds back, not only this request.
            self.pause(quota, wait)
        else:
            self.sleep(wait)
        return True

    def _exchange(self, method, url, error_path, write, attempt, quota, **kwargs):
        """One attempt inside its quota: a Response, or None for a read whose connection failed."""
        tickets = [(self.quotas[name], self.quotas[name].acquire(cost)) for name, cost in _charges(quota)]
        try:
            answer = self._send(method, url, error_path, write, attempt, **kwargs)
        finally:
            for window, ticket in tickets:
                window.release(ticket)
        if answer is None:
            return None
        response = Response(answer.status_code, answer.headers, answer.text, attempt=attempt)
        self.observe_usage(quota, response.headers)
        if 300 <= response.status < 400:
            raise ApiError("the server redirected the request to %s; this collection does not follow redirects:"
                           " check the API's base URL" % _location(answer), method=method, path=error_path,
                           status=response.status)
        return response

    def _send(self, method, url, error_path, write, attempt, **kwargs):
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
            if write:
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


def _charges(quota):
    """[(name, cost)] of a request's quota: None, a name (cost 1) or {name: cost}."""
    if quota is None:
        return []
    return [(quota, 1)] if isinstance(quota, str) else sorted(quota.items())


def _error_path(path):
    """What errors name of a path: no query (it may carry a token or a skip token), no host."""
    return path.split("?", 1)[0] if path.startswith("/") else urlparse(path).path


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
