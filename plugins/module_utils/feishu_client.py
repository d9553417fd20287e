# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Client of the Feishu/Lark Open Platform device-record API (security_and_compliance v2).

Auth: a tenant_access_token from app_id/app_secret, reused for its lifetime and refreshed once when
the API answers 99991663/99991664/99991671. Envelope: `{code, msg, data}`, where a non-zero code is an
error even under HTTP 200. Each endpoint has its own rate limiter at its published limit.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import time

from ansible_collections.fleetguard.devices.plugins.module_utils.bulk import run_each
from ansible_collections.fleetguard.devices.plugins.module_utils.errors import (
    ApiError,
    AuthenticationError,
    InputError,
    NotFoundError,
    TransientError,
)
from ansible_collections.fleetguard.devices.plugins.module_utils.tokens import TokenCache
from ansible_collections.fleetguard.devices.plugins.module_utils.transport import (
    HttpTransport,
    RateLimiter,
    path_segment,
)

TOKEN_PATH = "/open-apis/auth/v3/tenant_access_token/internal"
RECORDS_PATH = "/open-apis/security_and_compliance/v2/device_records"
JSON_CONTENT_TYPE = "application/json; charset=utf-8"

# Published limits per API x app x tenant (requests per second).
RATE_LIMITS = dict(get=50, list=10, create=10, update=10, delete=10)
MAX_PAGE_SIZE = 100

# Token answers that mean "fetch a new tenant_access_token and try once more" (as the Go SDK does).
TOKEN_REFRESH_CODES = frozenset([99991663, 99991664, 99991671])
AUTH_CODES = TOKEN_REFRESH_CODES | frozenset([99991661, 99991665, 99991668, 99991672, 99991677, 99991401])
RECORD_NOT_FOUND = 1785008
RATE_LIMITED = 99991400

DEVICE_RECORD_ID_PATTERN = re.compile(r"[0-9]{1,64}")

# Enum names <-> the ints on the wire (seed 000 and the spec, section 2).
DEVICE_STATUS = {"unknown": 0, "trusted": 1, "untrusted": 2}
DEVICE_OWNERSHIP = {"unknown": 0, "personal": 1, "company": 2}
DEVICE_SYSTEM = {"unknown": 0, "windows": 1, "macos": 2, "linux": 3, "android": 4, "ios": 5, "openharmony": 6}
DEVICE_TERMINAL_TYPE = {"unknown": 0, "mobile": 1, "desktop": 2}
# List filters that take an enum, by filter name.
ENUM_FILTERS = dict(device_status=DEVICE_STATUS, device_ownership=DEVICE_OWNERSHIP,
                    device_terminal_type=DEVICE_TERMINAL_TYPE, os=DEVICE_SYSTEM)
# Record fields that hold one of those enums (the `os` filter matches the record's device_system).
RECORD_ENUMS = dict(device_status=DEVICE_STATUS, device_ownership=DEVICE_OWNERSHIP,
                    device_terminal_type=DEVICE_TERMINAL_TYPE, device_system=DEVICE_SYSTEM)


def check_device_record_id(value):
    """Record ids are strings of digits; anything else could change the request path, so refuse it."""
    if not isinstance(value, str) or not DEVICE_RECORD_ID_PATTERN.fullmatch(value):
        raise InputError("device_record_id %r is not a Feishu device record id (a string of digits)" % (value,))
    return value


def normalize_record(record):
    """The API omits zero-valued fields (Go omitempty): restore the ones this collection compares."""
    record = dict(record)
    record.setdefault("device_status", 0)
    record.setdefault("device_ownership", 0)
    record.setdefault("version", "0")
    return record


class FeishuClient:
    """Feishu device-record endpoints over an HttpTransport."""

    def __init__(self, transport, app_id=None, app_secret=None, tenant_access_token=None, clock=time.monotonic):
        if not tenant_access_token and not (app_id and app_secret):
            raise InputError(
                "Feishu credentials are missing: set app_id and app_secret (or FEISHU_APP_ID and FEISHU_APP_SECRET),"
                " or tenant_access_token (or FEISHU_TENANT_ACCESS_TOKEN)")
        self.transport = transport
        self._app_id = app_id
        self._app_secret = app_secret
        can_fetch = bool(app_id and app_secret)
        self.tokens = TokenCache(fetch=self._fetch_token if can_fetch else None,
                                 static_token=None if can_fetch else tenant_access_token, clock=clock)
        self.limiters = dict((op, RateLimiter(rate)) for op, rate in RATE_LIMITS.items())

    @classmethod
    def from_params(cls, params):
        transport = HttpTransport(params["base_url"], timeout=params["timeout"],
                                  validate_certs=params["validate_certs"], max_retries=params["max_retries"])
        return cls(transport, app_id=params.get("app_id"), app_secret=params.get("app_secret"),
                   tenant_access_token=params.get("tenant_access_token"))

    def _fetch_token(self):
        """(tenant_access_token, lifetime in seconds) from app_id/app_secret."""
        response = self.transport.request(
            "POST", TOKEN_PATH, json_body=dict(app_id=self._app_id, app_secret=self._app_secret),
            headers={"Content-Type": JSON_CONTENT_TYPE}, idempotent=True)
        body = response.json if isinstance(response.json, dict) else {}
        if response.status == 200 and body.get("code") == 0 and body.get("tenant_access_token"):
            return body["tenant_access_token"], body.get("expire")
        details = dict(method="POST", path=TOKEN_PATH, status=response.status, api_code=body.get("code"),
                       request_id=_log_id(response))
        reason = body.get("msg") or "HTTP %s" % response.status
        if response.status == 429 or response.status >= 500:
            raise TransientError("could not obtain a tenant_access_token: %s" % reason, **details)
        raise AuthenticationError("Feishu refused app_id/app_secret: %s" % reason, **details)

    # --- the envelope -----------------------------------------------------------------------------

    def call(self, op, method, path, params=None, body=None):
        """One API call: returns `data` of a successful envelope, raises an ApiError subclass otherwise."""
        def request(token):
            headers = {"Authorization": "Bearer " + token}
            if body is not None:
                headers["Content-Type"] = JSON_CONTENT_TYPE
            return self.transport.request(method, path, params=params, json_body=body, headers=headers,
                                          limiter=self.limiters.get(op))

        response = self.tokens.send(request, rejected=lambda answer: _envelope(answer).get("code") in TOKEN_REFRESH_CODES)
        envelope = _envelope(response)
        if response.status < 400 and envelope.get("code") == 0:
            return envelope.get("data") or {}
        error = _api_error(response, envelope, method, path)
        if envelope.get("code") in TOKEN_REFRESH_CODES and not self.tokens.can_refresh:
            error.message = ("the tenant_access_token was rejected (%s) and cannot be renewed without"
                             " app_id and app_secret" % error.message)
        raise error

    # --- endpoints --------------------------------------------------------------------------------

    def get_record(self, device_record_id):
        """The record, or None when Feishu says it does not exist."""
        path = "%s/%s" % (RECORDS_PATH, path_segment(check_device_record_id(device_record_id)))
        try:
            data = self.call("get", "GET", path)
        except NotFoundError:
            return None
        return normalize_record(data.get("device_record") or {})

    def iter_records(self, filters=None, page_size=MAX_PAGE_SIZE):
        """Every record matching the list filters, page by page."""
        params = dict(filters or {})
        params["page_size"] = page_size
        while True:
            data = self.call("list", "GET", RECORDS_PATH, params=params)
            for record in data.get("items") or []:
                yield normalize_record(record)
            token = data.get("page_token")
            if not data.get("has_more") or not token:
                return
            params["page_token"] = token

    def update_record(self, device_record_id, version, device_ownership, device_status):
        """PUT both fields (the API requires both) at the version that was read."""
        path = "%s/%s" % (RECORDS_PATH, path_segment(check_device_record_id(device_record_id)))
        self.call("update", "PUT", path, params=dict(version=version),
                  body=dict(device_ownership=device_ownership, device_status=device_status))

    def delete_record(self, device_record_id):
        """True when deleted now, False when it was already gone."""
        path = "%s/%s" % (RECORDS_PATH, path_segment(check_device_record_id(device_record_id)))
        try:
            self.call("delete", "DELETE", path)
        except NotFoundError:
            return False
        return True

    # --- identity resolution ----------------------------------------------------------------------

    def resolve(self, field, values, workers=4):
        """Map each value of `field` (device_record_id, serial_number or device_name) to the records
        whose field equals it exactly: {value: [record, ...]}.

        Reading the whole directory page by page is far cheaper than one lookup per value when the
        directory is small compared to the number of values, and unknowable in advance. So a scan
        runs with a budget of half the pages that per-value lookups would cost; if the directory
        ends within it, values are matched locally; otherwise lookups finish the job (at worst
        1.5 times the lookups' cost, usually a small fraction).
        """
        values = list(dict.fromkeys(values))
        if field == "device_record_id":
            for value in values:
                check_device_record_id(value)
            # A GET is allowed five times as often as a list page.
            budget = len(values) * RATE_LIMITS["list"] // RATE_LIMITS["get"] // 2
        else:
            budget = len(values) // 2
        matches = dict((value, []) for value in values)
        remaining = values
        if budget >= 1:
            scanned, complete = self._scan(budget)
            for record in scanned:
                if record.get(field) in matches:
                    matches[record.get(field)].append(record)
            if complete:
                return matches
            if field == "device_record_id":
                # Ids are unique: whatever the partial scan found is settled.
                remaining = [value for value in values if not matches[value]]
            else:
                matches = dict((value, []) for value in values)
        for result in run_each(remaining, lambda value: self._lookup(field, value), workers=workers):
            if result.error is not None:
                raise result.error
            matches[result.item] = result.value
        return matches

    def _scan(self, max_pages):
        """Read up to max_pages list pages: (records, whether the directory ended within them)."""
        records = []
        params = dict(page_size=MAX_PAGE_SIZE)
        for dummy in range(max_pages):
            data = self.call("list", "GET", RECORDS_PATH, params=params)
            records.extend(normalize_record(r) for r in data.get("items") or [])
            if not data.get("has_more") or not data.get("page_token"):
                return records, True
            params["page_token"] = data["page_token"]
        return records, False

    def _lookup(self, field, value):
        if field == "device_record_id":
            record = self.get_record(value)
            return [record] if record is not None else []
        # One page is enough: more than one match is already ambiguous, and the page names the candidates.
        data = self.call("list", "GET", RECORDS_PATH, params={field: value, "page_size": 20})
        return [normalize_record(r) for r in data.get("items") or []]


def _envelope(response):
    return response.json if isinstance(response.json, dict) else {}


def _log_id(response):
    body = response.json if isinstance(response.json, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    return response.headers.get("X-Tt-Logid") or error.get("log_id")


def _api_error(response, envelope, method, path):
    code = envelope.get("code")
    message = envelope.get("msg") or "HTTP %s with no Feishu envelope" % response.status
    details = dict(method=method, path=path, status=response.status, api_code=code, request_id=_log_id(response))
    if code in AUTH_CODES:
        return AuthenticationError(message, **details)
    if code == RECORD_NOT_FOUND:
        return NotFoundError(message, **details)
    if response.status == 429 or code == RATE_LIMITED:
        return TransientError("still rate limited after retries: " + message, **details)
    if response.status >= 500:
        return TransientError(message, maybe_applied=method not in ("GET", "HEAD"), **details)
    return ApiError(message, **details)
