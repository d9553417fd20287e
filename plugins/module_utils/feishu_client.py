# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""Client of the Feishu/Lark Open Platform device-record API (security_and_compliance v2).

Auth: a tenant_access_token from app_id/app_secret, reused for its lifetime and refreshed once when
the API answers 99991663/99991664/99991671. Envelope: `{code, msg, data}`, where a non-zero code is an
error even under HTTP 200. Each endpoint has its own quota at its published limit (quota.py), per app and tenant.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import time
from urllib.parse import urlparse

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import (
    ApiError,
    AuthenticationError,
    InputError,
    NotFoundError,
    TransientError,
    answer_text,
    body_kind,
    shown,
)
from ansible_collections.fleetguard.devices.plugins.module_utils.quota import scope_key
from ansible_collections.fleetguard.devices.plugins.module_utils.tokens import TokenCache, token_answer_problem
from ansible_collections.fleetguard.devices.plugins.module_utils.transport import (
    ApiClient,
    HttpTransport,
    check_endpoint,
    path_segment,
)

TOKEN_PATH = "/open-apis/auth/v3/tenant_access_token/internal"
RECORDS_PATH = "/open-apis/security_and_compliance/v2/device_records"
JSON_CONTENT_TYPE = "application/json; charset=utf-8"

# Published limits per API x app x tenant: requests per QUOTA_WINDOW seconds
# (https://open.feishu.cn/document/server-docs/api-call-guide/frequency-control).
RATE_LIMITS = dict(get=50, list=10, create=10, update=10, delete=10)
QUOTA_WINDOW = 1.0
MAX_PAGE_SIZE = 100

# Token answers that mean "fetch a new tenant_access_token and try once more" (as the Go SDK does).
TOKEN_REFRESH_CODES = frozenset([99991663, 99991664, 99991671])
AUTH_CODES = TOKEN_REFRESH_CODES | frozenset([99991661, 99991665, 99991668, 99991672, 99991677, 99991401])
RECORD_NOT_FOUND = 1785008
RATE_LIMITED = 99991400

DEVICE_RECORD_ID_PATTERN = re.compile(r"[0-9]{1,64}")


def check_device_record_id(value):
    """Record ids are strings of digits; anything else could change the request path, so refuse it."""
    if not isinstance(value, str) or not DEVICE_RECORD_ID_PATTERN.fullmatch(value):
        raise InputError("device_record_id %s is not a Feishu device record id (a string of digits)" % shown(value))
    return value


def normalize_record(record):
    """The API omits zero-valued fields (Go omitempty): restore the ones this collection compares."""
    record = dict(record)
    record.setdefault("device_status", 0)
    record.setdefault("device_ownership", 0)
    record.setdefault("version", "0")
    return record


class FeishuClient(ApiClient):
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
        # One window per endpoint, shared with every process of this controller that uses the same app;
        # a ready token stands for an app nobody named, so it is its own scope (hashed: never on disk).
        app = app_id or scope_key("token", tenant_access_token)
        host = urlparse(transport.base_url or "").netloc
        for op, limit in RATE_LIMITS.items():
            transport.define_quota(op, limit, QUOTA_WINDOW, key=scope_key("feishu", host, app, op))

    @classmethod
    def from_params(cls, params):
        transport = HttpTransport(check_endpoint(params["base_url"], "base_url"), timeout=params["timeout"],
                                  validate_certs=params["validate_certs"], max_retries=params["max_retries"])
        return cls(transport, app_id=params.get("app_id"), app_secret=params.get("app_secret"),
                   tenant_access_token=params.get("tenant_access_token"))

    def _fetch_token(self):
        """(tenant_access_token, lifetime in seconds) from app_id/app_secret."""
        response = self._send("POST", TOKEN_PATH, json_body=dict(app_id=self._app_id, app_secret=self._app_secret),
                              headers={"Content-Type": JSON_CONTENT_TYPE}, idempotent=True)
        body = _envelope(response)
        code = body.get("code")
        details = dict(method="POST", path=TOKEN_PATH, status=response.status, request_id=_log_id(response),
                       api_code=code if _is_code(code) else None)
        if response.status == 429 or response.status >= 500 or code == RATE_LIMITED:
            reason = answer_text(body.get("msg")) or "HTTP %s" % response.status
            raise TransientError("could not obtain a tenant_access_token: %s" % reason, **details)
        if not _is_code(code):
            # Not Feishu's envelope (an HTML page from a proxy, a body of another API): no verdict on the secret.
            raise ApiError("Feishu answered the tenant_access_token request with %s, which this collection does not"
                           " understand: check base_url" % body_kind(response.json, "JSON without Feishu's envelope"),
                           **details)
        if code != 0 or response.status >= 400:
            raise AuthenticationError("Feishu refused app_id/app_secret: %s" % (
                answer_text(body.get("msg")) or "HTTP %s" % response.status), **details)
        token, expire = body.get("tenant_access_token"), body.get("expire")
        problem = token_answer_problem(token, expire, "tenant_access_token", "expire")
        if problem:
            raise ApiError("Feishu answered the tenant_access_token request with code 0, but %s" % problem, **details)
        return token, expire

    # --- the envelope -----------------------------------------------------------------------------

    def _send(self, method, path, quota=None, idempotent=None, **kwargs):
        """transport.request, sent again while the envelope says the gateway throttled it: Feishu may say "rate
        limited" (99991400) under HTTP 200 or 400, not only with 429. The transport's retry policy and count apply."""
        response = self.transport.request(method, path, quota=quota, idempotent=idempotent, **kwargs)
        while _throttled(response) and self.transport.wait_to_resend(response, method, path, idempotent=idempotent,
                                                                     quota=quota, throttled=True):
            response = self.transport.request(method, path, quota=quota, idempotent=idempotent,
                                              first_attempt=response.attempt + 1, **kwargs)
        return response

    def call(self, op, method, path, params=None, body=None):
        """One API call: returns `data` of a successful envelope, raises an ApiError subclass otherwise."""
        def request(token):
            headers = {"Authorization": "Bearer " + token}
            if body is not None:
                headers["Content-Type"] = JSON_CONTENT_TYPE
            return self._send(method, path, params=params, json_body=body, headers=headers, quota=op)

        response = self.tokens.send(request, rejected=lambda answer: _envelope(answer).get("code") in TOKEN_REFRESH_CODES)
        envelope = _envelope(response)
        if response.status < 400 and envelope.get("code") == 0:
            data = envelope.get("data")
            if data is None:
                return {}
            if not isinstance(data, dict):
                raise _unexpected(response, method, path, "its data is %s, not an object" % type(data).__name__)
            return data
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
        record = data.get("device_record")
        if not isinstance(record, dict) or record.get("device_record_id", device_record_id) != device_record_id:
            raise ApiError("Feishu answered GET device_records/%s without that record" % device_record_id,
                           method="GET", path=path, status=200)
        record = dict(record, device_record_id=device_record_id)
        return normalize_record(record)

    def list_page(self, params):
        """One page of the list endpoint: (records, page_token of the next page or None). A page that says there
        is more but gives no page_token is an ApiError, never the last page."""
        data = self.call("list", "GET", RECORDS_PATH, params=params)
        items = data.get("items") or []
        if not isinstance(items, list) or not all(isinstance(item, dict) and item.get("device_record_id")
                                                  for item in items):
            raise ApiError("Feishu answered the list call with items that are not device records",
                           method="GET", path=RECORDS_PATH, status=200)
        if data.get("has_more") and not data.get("page_token"):
            # Not the last page: the records after it cannot be listed, and a caller must not take the list as whole.
            raise ApiError("Feishu answered the list call with has_more but no page_token: the later pages cannot be read",
                           method="GET", path=RECORDS_PATH, status=200)
        token = data.get("page_token") if data.get("has_more") else None
        if token is not None and not isinstance(token, str):
            raise ApiError("Feishu answered the list call with a page_token that is not a string",
                           method="GET", path=RECORDS_PATH, status=200)
        return [normalize_record(record) for record in items], token

    def iter_records(self, filters=None, page_size=MAX_PAGE_SIZE):
        """Every record matching the list filters, page by page."""
        params = dict(filters or {})
        params["page_size"] = page_size
        tokens = set()
        while True:
            records, token = self.list_page(params)
            yield from records
            if not token:
                return
            if token in tokens:
                # A service fault that would page for ever, spending the list quota.
                raise ApiError("Feishu answered a page_token it had already given: the pages go round in a loop",
                               method="GET", path=RECORDS_PATH, status=200)
            tokens.add(token)
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


def _envelope(response):
    return response.json if isinstance(response.json, dict) else {}


def _is_code(code):
    """Whether `code` is an envelope's code (an integer; a boolean is not one)."""
    return isinstance(code, int) and not isinstance(code, bool)


def _throttled(response):
    """Feishu's gateway may say "rate limited" in the envelope under HTTP 200 or 400, not only with 429."""
    return _envelope(response).get("code") == RATE_LIMITED


def _unexpected(response, method, path, what):
    return ApiError("Feishu answered with an envelope this collection does not understand: %s" % what,
                    method=method, path=path, status=response.status, request_id=_log_id(response))


def _log_id(response):
    body = response.json if isinstance(response.json, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    return response.headers.get("X-Tt-Logid") or error.get("log_id")


def _api_error(response, envelope, method, path):
    code = envelope.get("code")
    message = answer_text(envelope.get("msg")) or "HTTP %s with no Feishu envelope" % response.status
    details = dict(method=method, path=path, status=response.status, api_code=code, request_id=_log_id(response))
    if code in AUTH_CODES:
        return AuthenticationError(message, **details)
    if code == RECORD_NOT_FOUND:
        return NotFoundError(message, **details)
    if response.status == 429 or code == RATE_LIMITED:
        return TransientError("still rate limited after retries: " + message, **details)
    if response.status >= 500 or not _is_code(code):
        # A 5xx, or an answer that is not Feishu's (an HTML page from a proxy): a write may or may not have landed.
        return TransientError(message, maybe_applied=method not in ("GET", "HEAD"), **details)
    return ApiError(message, **details)
