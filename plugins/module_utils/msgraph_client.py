# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""Client of Microsoft Graph for devices: tokens, Graph's error body, paging and JSON batching.

Tokens come from a credential (msgraph_credentials: client secret, certificate, workload identity,
managed identity) or are given ready; they are reused and replaced once on 401. Errors carry Graph's
`error.code`, `message` and `innerError.request-id`. `batch()` sends up to 20 requests per
`POST /$batch` and retries throttled sub-requests after their own `Retry-After`.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import json
import random
import uuid

from ansible_collections.fleetguard.devices.plugins.module_utils.bulk import run_each
from ansible_collections.fleetguard.devices.plugins.module_utils.errors import (
    ApiError,
    AuthenticationError,
    FleetguardError,
    InputError,
    NotFoundError,
    TransientError,
    answer_text,
    shown,
)
from ansible_collections.fleetguard.devices.plugins.module_utils.entra_authority import cloud_hosts
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_credentials import select_credential
from ansible_collections.fleetguard.devices.plugins.module_utils.quota import scope_key
from ansible_collections.fleetguard.devices.plugins.module_utils.tokens import TokenCache
from ansible_collections.fleetguard.devices.plugins.module_utils.transport import (
    MAX_RETRY_AFTER,
    HttpTransport,
    check_endpoint,
    observe_usage,
    retry_after_seconds,
)

API_VERSIONS = ("v1.0", "beta")
BATCH_LIMIT = 20
BATCHES_IN_FLIGHT = 4
# Device writes: 3,000 per 150 s per app and tenant, 25 per 10 s per user (delegated). Reads: resource
# units per 10 s per app and tenant, by tenant size; a device read with $select costs 1
# (https://learn.microsoft.com/en-us/graph/throttling-limits#identity-and-access-service-limits).
WRITE_QUOTA_APP = (3000, 150.0)
WRITE_QUOTA_USER = (25, 10.0)
READ_QUOTAS = dict(small=(3500, 10.0), medium=(5000, 10.0), large=(8000, 10.0))
JSON_HEADERS = {"Content-Type": "application/json"}


def graph_error(status, body, headers, method, path):
    """The exception for a Graph error answer (status >= 400)."""
    error = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), dict) else {}
    inner = error.get("innerError") or error.get("innererror") or {}
    # Graph quotes the request back in its messages (a $filter of 10,000 characters): cut what is repeated.
    code = answer_text(error.get("code"))
    message = answer_text(error.get("message")) or "HTTP %s" % status
    request_id = answer_text(inner.get("request-id") if isinstance(inner, dict) else None) or answer_text(
        (headers or {}).get("request-id"))
    details = dict(method=method, path=path, status=status, api_code=code, request_id=request_id)
    if status == 401:
        return AuthenticationError(message, **details)
    if status == 404:
        return NotFoundError(message, **details)
    if status == 429 or status >= 500:
        return TransientError(message, maybe_applied=status >= 500 and method not in ("GET", "HEAD"), **details)
    return ApiError(message, **details)


def token_claims(token):
    """The payload of a JWT access token, read without verifying it (only to learn app vs delegated)."""
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload.encode()).decode())
        return claims if isinstance(claims, dict) else {}
    except (IndexError, ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        return {}


class GraphClient:
    """Graph over an HttpTransport: one session for the authority and Graph, one token for every thread."""

    def __init__(self, transport, graph_endpoint, credential=None, access_token=None, api_version="v1.0",
                 tenant_size="small"):
        """`credential` (msgraph_credentials) fetches tokens; a ready `access_token` is used as is instead."""
        if api_version not in API_VERSIONS:
            raise InputError("api_version must be one of %s" % ", ".join(API_VERSIONS))
        if credential is None and not access_token:
            raise InputError("Microsoft Graph needs a credential or an access_token")
        if tenant_size not in READ_QUOTAS:
            raise InputError("tenant_size must be one of %s, not %s" % (", ".join(READ_QUOTAS), shown(tenant_size)))
        self.transport = transport
        self.graph_root = graph_endpoint.rstrip("/")
        self.base = "%s/%s" % (self.graph_root, api_version)
        self.api_version = api_version
        self.credential = None if access_token else credential
        fetch = None if access_token else (lambda: credential.fetch(transport))
        self.tokens = TokenCache(fetch=fetch, static_token=access_token or None)
        self.tenant_size = tenant_size
        self._quotas = None

    @classmethod
    def from_params(cls, params, api_version=None):
        graph_endpoint, authority_host = cloud_hosts(params.get("cloud"))
        graph_endpoint = check_endpoint(params.get("graph_endpoint") or graph_endpoint, "graph_endpoint")
        authority_host = params.get("authority_host") or authority_host
        access_token = params.get("access_token") if params.get("auth_source") in (None, "auto", "access_token") else None
        credential = None if access_token else select_credential(params, graph_endpoint.rstrip("/"), authority_host)
        transport = HttpTransport(timeout=params["timeout"], validate_certs=params["validate_certs"],
                                  max_retries=params["max_retries"])
        return cls(transport, graph_endpoint, credential=credential, access_token=access_token,
                   api_version=api_version or params.get("api_version"), tenant_size=params.get("tenant_size") or "small")

    @property
    def app_only(self):
        """True unless the token says it acts for a user (delegated tokens carry `scp`)."""
        return "scp" not in token_claims(self.tokens.get())

    @property
    def quotas(self):
        """(read quota, write quota), scoped by what the token says: its tenant, its app, and for a delegated
        token its user. Shared with every process of this controller in the same scope."""
        if self._quotas is None:
            claims = token_claims(self.tokens.get())
            tenant = claims.get("tid") or "unknown tenant"
            app = claims.get("appid") or claims.get("azp") or getattr(self.credential, "client_id", None) or "unknown app"
            host = self.graph_root.split("://", 1)[-1]
            read = self.transport.quota(*READ_QUOTAS[self.tenant_size], key=scope_key("graph", host, tenant, app, "read"))
            if "scp" in claims:
                user_key = scope_key("graph", host, tenant, claims.get("oid"), "user writes")
                write = self.transport.quota(*WRITE_QUOTA_USER, key=user_key)
            else:
                write = self.transport.quota(*WRITE_QUOTA_APP, key=scope_key("graph", host, tenant, app, "writes"))
            self._quotas = (read, write)
        return self._quotas

    # --- requests -------------------------------------------------------------------------------

    def url(self, path):
        return path if path.startswith("https://") or path.startswith("http://") else self.base + path

    def request(self, method, path, params=None, body=None, headers=None):
        """One Graph call, inside the read or write quota; returns the Response of a success, raises the Graph
        error otherwise."""
        read, write = self.quotas
        return self._send(method, path, params=params, body=body, headers=headers,
                          quota=write if method not in ("GET", "HEAD") else read)

    def _send(self, method, path, params=None, body=None, headers=None, quota=None, idempotent=None,
              client_request_id=None):
        """Send with the current token, once more with a new one on 401; raise the Graph error of a failure.

        Every request carries a new `client-request-id` (a GUID), named in every error it ends in.
        """
        client_request_id = client_request_id or str(uuid.uuid4())

        def send(token):
            all_headers = {"Authorization": "Bearer " + token, "client-request-id": client_request_id}
            all_headers.update(headers or {})
            if body is not None:
                all_headers.update(JSON_HEADERS)
            return self.transport.request(method, self.url(path), params=params, json_body=body, headers=all_headers,
                                          quota=quota, idempotent=idempotent)

        try:
            response = self.tokens.send(send, rejected=lambda answer: answer.status == 401)
        except FleetguardError as exc:
            exc.client_request_id = exc.client_request_id or client_request_id
            raise
        if response.status >= 400:
            raise self._error(response.status, response.json, response.headers, method, path, client_request_id)
        return response

    def _error(self, status, body, headers, method, path, client_request_id=None):
        error = graph_error(status, body, headers, method, path.split("?", 1)[0] if path.startswith("/") else path)
        error.client_request_id = client_request_id
        if status == 401 and not self.tokens.can_refresh:
            error.message = "the access_token was rejected (%s) and cannot be renewed without client credentials" % (
                error.message)
        return error

    def iter_pages(self, path, params=None, headers=None, limit=None, on_page=None):
        """Every item of a collection, following @odata.nextLink (ConsistencyLevel is resent each time).
        `on_page(body)` sees each page, e.g. for the @odata.count of the first."""
        count = 0
        next_path, next_params = path, params
        while next_path:
            body = self.request("GET", next_path, params=next_params, headers=headers).json
            problem = _read_shape_problem(body)
            if problem:
                raise ApiError("Graph answered with a page this collection does not understand: %s" % problem,
                               method="GET", path=next_path.split("?", 1)[0], status=200)
            if on_page is not None:
                on_page(body)
            for item in body.get("value") or []:
                yield item
                count += 1
                if limit and count >= limit:
                    return
            next_path, next_params = body.get("@odata.nextLink"), None

    # --- JSON batching ----------------------------------------------------------------------------

    def batch(self, requests):
        """Send requests (dicts with id, method, url relative to the version, optional body/headers) in
        batches of 20. Returns {id: SubResponse} for every request, the error already built for a failure.

        Throttled (429) sub-requests are sent again after the longest Retry-After among them, within
        the transport's max_retries; so are failed reads (5xx), and sub-requests refused for an expired
        token (401: never applied) once the token is replaced. A 5xx or lost answer on a write comes
        back as an error with `maybe_applied`: the caller re-reads before deciding to write again.
        """
        results = {}
        pending = list(requests)
        attempt = 0
        while pending:
            retry, waits = [], []
            chunks = [pending[start:start + BATCH_LIMIT] for start in range(0, len(pending), BATCH_LIMIT)]
            # A few batches in flight at once: the quotas, not a queue of calls, set the pace.
            for sent in run_each(chunks, self._send_batch_with_token, workers=BATCHES_IN_FLIGHT):
                if sent.error is not None:
                    raise sent.error
                for request in sent.item:
                    answer = sent.value[request["id"]]
                    status = answer.status
                    refreshable = status == 401 and self.tokens.can_refresh
                    failed_read = status is not None and status >= 500 and request["method"] == "GET"
                    retriable = status == 429 or refreshable or failed_read
                    wait = 0.0 if status == 401 else retry_after_seconds(answer.headers)
                    if retriable and wait is not None and wait > MAX_RETRY_AFTER:
                        answer.error.message += (" (the server asked to wait %d s, more than the %d s a task waits;"
                                                 " run the task again later)" % (wait, MAX_RETRY_AFTER))
                        results[request["id"]] = answer
                    elif retriable and attempt < self.transport.max_retries:
                        retry.append(request)
                        waits.append(wait if wait is not None else self.transport.backoff(attempt))
                    else:
                        results[request["id"]] = answer
            if retry:
                # The quotas make the next acquire() wait: every worker holds back, and nothing sleeps twice.
                wait = max(waits) + random.uniform(0, 0.05) if max(waits) > 0 else 0.0
                read, write = self.quotas
                if any(r["method"] != "GET" for r in retry):
                    write.pause(wait)
                if any(r["method"] == "GET" for r in retry):
                    read.pause(wait)
                attempt += 1
            pending = retry
        return results

    def _send_batch_with_token(self, chunk):
        """_send_batch, and a new token when a sub-request says the one it carried expired."""
        token = self.tokens.get()
        answers = self._send_batch(chunk)
        if self.tokens.can_refresh and any(answer.status == 401 for answer in answers.values()):
            self.tokens.replace(token)
        return answers

    def _send_batch(self, chunk):
        """One POST /$batch: {id: SubResponse}. Throttling counts every sub-request, so the quotas are
        charged per item."""
        writes = [r for r in chunk if r["method"] != "GET"]
        read, write = self.quotas
        tickets = []
        if writes:
            tickets.append((write, write.acquire(len(writes))))
        if len(chunk) > len(writes):
            tickets.append((read, read.acquire(len(chunk) - len(writes))))
        payload = dict(requests=[_batch_item(r) for r in chunk])
        client_request_id = str(uuid.uuid4())
        try:
            body = self._send("POST", "/$batch", body=payload, idempotent=not writes,
                              client_request_id=client_request_id).json
        except TransientError as exc:
            if not exc.maybe_applied:
                raise
            # The answer to a batch of writes was lost: every item may or may not have landed.
            return dict((r["id"], SubResponse(None, {}, None, TransientError(
                exc.message, maybe_applied=True, method=r["method"], path=_path_of(r),
                client_request_id=client_request_id))) for r in chunk)
        finally:
            for quota, ticket in tickets:
                quota.release(ticket)
        if not isinstance(body, dict) or not isinstance(body.get("responses"), list):
            raise ApiError("Graph answered the $batch call without a list of responses", method="POST",
                           path="/$batch", status=200, client_request_id=client_request_id)
        items = dict((str(item.get("id")), item) for item in body["responses"] if isinstance(item, dict))
        missing = [r["id"] for r in chunk if r["id"] not in items]
        if missing:
            raise ApiError("the $batch answer lacks responses for %s" % ", ".join(missing),
                           method="POST", path="/$batch", client_request_id=client_request_id)
        answers = {}
        for request in chunk:
            item = items[request["id"]]
            status = item.get("status")
            headers = item.get("headers") if isinstance(item.get("headers"), dict) else {}
            sub_body = item.get("body")
            if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
                raise ApiError("Graph answered sub-request %s of the $batch call with the status %s"
                               % (request["id"], shown(status)), method="POST", path="/$batch",
                               client_request_id=client_request_id)
            error = None
            if status >= 400:
                error = self._error(status, sub_body, headers, request["method"], _path_of(request), client_request_id)
            problem = _read_shape_problem(sub_body) if error is None and request["method"] == "GET" else None
            if problem:
                error = ApiError("Graph answered with a body this collection does not understand: %s" % problem,
                                 method="GET", path=_path_of(request), status=status,
                                 client_request_id=client_request_id)
            answers[request["id"]] = SubResponse(status, headers, sub_body, error)
            observe_usage(write if request["method"] != "GET" else read, headers)
        return answers


class SubResponse:
    """The answer to one sub-request of a batch: `status` (None when the answer was lost), `headers`,
    `body`, and the `error` it means when it failed (None on success)."""

    __slots__ = ("status", "headers", "body", "error")

    def __init__(self, status, headers, body, error=None):
        self.status = status
        self.headers = headers
        self.body = body
        self.error = error


def _read_shape_problem(body):
    """What is wrong with the body of a successful read (one object, or a page with a `value` list of objects),
    or None."""
    if not isinstance(body, dict):
        return "the body is %s, not an object" % type(body).__name__
    if "value" in body and not (isinstance(body["value"], list) and all(isinstance(v, dict) for v in body["value"])):
        return "its value is not a list of objects"
    return None


def _path_of(request):
    return request["url"].split("?", 1)[0]


def _batch_item(request):
    item = dict(id=request["id"], method=request["method"], url=request["url"])
    headers = dict(request.get("headers") or {})
    if request.get("body") is not None:
        item["body"] = request["body"]
        headers.update(JSON_HEADERS)
    if headers:
        item["headers"] = headers
    return item
