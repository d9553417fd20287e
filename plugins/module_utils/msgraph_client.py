# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""Client of Microsoft Graph for devices: tokens, Graph's error body, paging and JSON batching.

Tokens come from the OAuth2 client-credentials flow (a client secret, or a certificate that signs a
client assertion) or are given ready; they are reused and replaced once on 401. Errors carry Graph's
`error.code`, `message` and `innerError.request-id`. `batch()` sends up to 20 requests per
`POST /$batch` and retries throttled sub-requests after their own `Retry-After`.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import hashlib
import json
import random
import time
import uuid

try:
    import jwt
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.hashes import SHA1, SHA256
    HAS_JWT = True
except ImportError:  # pragma: no cover - only certificate authentication needs them
    HAS_JWT = False

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
    retry_after_seconds,
)

# Graph root and token authority per national cloud.
CLOUDS = {
    "global": ("https://graph.microsoft.com", "https://login.microsoftonline.com"),
    "usgov": ("https://graph.microsoft.us", "https://login.microsoftonline.us"),
    "usgovdod": ("https://dod-graph.microsoft.us", "https://login.microsoftonline.us"),
    "china": ("https://microsoftgraph.chinacloudapi.cn", "https://login.chinacloudapi.cn"),
}
API_VERSIONS = ("v1.0", "beta")
BATCH_LIMIT = 20
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Device writes are limited to 3,000 per 150 s per app and tenant, and to 25 per 10 s per user for
# delegated callers (Graph throttling limits for identity and access). Reads cost resource units from
# a much larger budget; the read pace only keeps a huge run from spending it all at once.
WRITE_RATE_APP = 3000.0 / 150
WRITE_RATE_USER = 25.0 / 10
READ_RATE = 300.0
JSON_HEADERS = {"Content-Type": "application/json"}


def graph_error(status, body, headers, method, path):
    """The exception for a Graph error answer (status >= 400)."""
    error = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), dict) else {}
    inner = error.get("innerError") or error.get("innererror") or {}
    code = error.get("code")
    message = error.get("message") or "HTTP %s" % status
    request_id = (inner.get("request-id") if isinstance(inner, dict) else None) or (headers or {}).get("request-id")
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


class ClientCertificate:
    """A PEM private key and certificate that sign client assertions (RS256, with x5t and x5t#S256)."""

    def __init__(self, pem_path, password=None):
        if not HAS_JWT:
            raise InputError("certificate authentication needs the PyJWT and cryptography Python libraries")
        try:
            with open(pem_path, "rb") as handle:
                pem = handle.read()
        except (IOError, OSError) as exc:
            raise InputError("cannot read client_certificate_path %s: %s" % (pem_path, exc.strerror))
        try:
            self.key = serialization.load_pem_private_key(pem, password=password.encode() if password else None)
            certificate = x509.load_pem_x509_certificate(pem)
        except (ValueError, TypeError) as exc:
            raise InputError("client_certificate_path %s must hold a PEM private key and its certificate (%s)"
                             % (pem_path, exc))
        der = certificate.public_bytes(serialization.Encoding.DER)
        self.x5t = _b64url(certificate.fingerprint(SHA1()))
        self.x5t_s256 = _b64url(certificate.fingerprint(SHA256()))
        self.thumbprint = hashlib.sha1(der).hexdigest().upper()

    def assertion(self, client_id, audience, now=None):
        now = int(now if now is not None else time.time())
        claims = dict(aud=audience, iss=client_id, sub=client_id, jti=str(uuid.uuid4()), nbf=now, iat=now,
                      exp=now + 600)
        headers = {"x5t": self.x5t, "x5t#S256": self.x5t_s256}
        token = jwt.encode(claims, self.key, algorithm="RS256", headers=headers)
        return token.decode() if isinstance(token, bytes) else token


def _b64url(raw):
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class GraphClient:
    """Graph over an HttpTransport: one session for the authority and Graph, one token for every thread."""

    def __init__(self, transport, graph_endpoint, authority_host, tenant_id=None, client_id=None,
                 client_secret=None, certificate=None, access_token=None, api_version="v1.0"):
        if api_version not in API_VERSIONS:
            raise InputError("api_version must be one of %s" % ", ".join(API_VERSIONS))
        if not access_token:
            missing = [name for name, value in (("tenant_id", tenant_id), ("client_id", client_id)) if not value]
            if not (client_secret or certificate):
                missing.append("client_secret (or client_certificate_path)")
            if missing:
                raise InputError(
                    "Microsoft Graph credentials are missing: %s. Set tenant_id, client_id and client_secret"
                    " (or AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET / AZURE_SECRET, as AWX's Azure"
                    " credential injects them), or client_certificate_path, or access_token (MSGRAPH_ACCESS_TOKEN)"
                    % ", ".join(missing))
        self.transport = transport
        self.graph_root = graph_endpoint.rstrip("/")
        self.base = "%s/%s" % (self.graph_root, api_version)
        self.api_version = api_version
        self.token_url = "%s/%s/oauth2/v2.0/token" % (authority_host.rstrip("/"), tenant_id)
        self._client_id = client_id
        self._client_secret = client_secret
        self._certificate = certificate
        can_fetch = not access_token
        self.tokens = TokenCache(fetch=self._fetch_token if can_fetch else None,
                                 static_token=access_token if not can_fetch else None)
        self.read_limiter = transport.limiter(READ_RATE)
        self._write_limiter = None

    @classmethod
    def from_params(cls, params, api_version=None):
        graph_endpoint, authority_host = CLOUDS[params.get("cloud") or "global"]
        certificate = None
        if params.get("client_certificate_path") and not params.get("access_token"):
            certificate = ClientCertificate(params["client_certificate_path"], params.get("client_certificate_password"))
        transport = HttpTransport(timeout=params["timeout"], validate_certs=params["validate_certs"],
                                  max_retries=params["max_retries"])
        return cls(transport, graph_endpoint=params.get("graph_endpoint") or graph_endpoint,
                   authority_host=params.get("authority_host") or authority_host,
                   tenant_id=params.get("tenant_id"), client_id=params.get("client_id"),
                   client_secret=params.get("client_secret"), certificate=certificate,
                   access_token=params.get("access_token"), api_version=api_version or params.get("api_version"))

    # --- authentication -------------------------------------------------------------------------

    def _fetch_token(self):
        form = dict(client_id=self._client_id, scope="%s/.default" % self.graph_root, grant_type="client_credentials")
        if self._certificate is not None:
            form["client_assertion_type"] = CLIENT_ASSERTION_TYPE
            form["client_assertion"] = self._certificate.assertion(self._client_id, self.token_url)
        else:
            form["client_secret"] = self._client_secret
        response = self.transport.request("POST", self.token_url, data=form, idempotent=True)
        body = response.json if isinstance(response.json, dict) else {}
        if response.status == 200 and body.get("access_token"):
            return body["access_token"], body.get("expires_in")
        path = self.token_url.split("://", 1)[-1].split("/", 1)[-1]
        details = dict(method="POST", path="/" + path, status=response.status,
                       api_code=(body.get("error_codes") or [body.get("error")])[0],
                       request_id=body.get("trace_id") or body.get("correlation_id"))
        # Only the first line of error_description: the rest repeats ids already in request_id.
        reason = (body.get("error_description") or body.get("error") or "HTTP %s" % response.status).splitlines()[0]
        if response.status == 429 or response.status >= 500:
            raise TransientError("could not obtain a Graph token: %s" % reason, **details)
        raise AuthenticationError("the token authority refused the credentials: %s" % reason, **details)

    @property
    def app_only(self):
        """True unless the token says it acts for a user (delegated tokens carry `scp`)."""
        return "scp" not in token_claims(self.tokens.get())

    @property
    def write_limiter(self):
        if self._write_limiter is None:
            self._write_limiter = self.transport.limiter(WRITE_RATE_APP if self.app_only else WRITE_RATE_USER)
        return self._write_limiter

    # --- requests -------------------------------------------------------------------------------

    def url(self, path):
        return path if path.startswith("https://") or path.startswith("http://") else self.base + path

    def request(self, method, path, params=None, body=None, headers=None):
        """One Graph call, paced by the read or write limiter; returns the Response of a success, raises
        the Graph error otherwise."""
        limiter = self.write_limiter if method not in ("GET", "HEAD") else self.read_limiter
        return self._send(method, path, params=params, body=body, headers=headers, limiter=limiter)

    def _send(self, method, path, params=None, body=None, headers=None, limiter=None, idempotent=None):
        """Send with the current token, once more with a new one on 401; raise the Graph error of a failure."""
        def send(token):
            all_headers = {"Authorization": "Bearer " + token}
            all_headers.update(headers or {})
            if body is not None:
                all_headers.update(JSON_HEADERS)
            return self.transport.request(method, self.url(path), params=params, json_body=body, headers=all_headers,
                                          limiter=limiter, idempotent=idempotent)

        response = self.tokens.send(send, rejected=lambda answer: answer.status == 401)
        if response.status >= 400:
            raise self._error(response.status, response.json, response.headers, method, path)
        return response

    def _error(self, status, body, headers, method, path):
        error = graph_error(status, body, headers, method, path.split("?", 1)[0] if path.startswith("/") else path)
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
            body = self.request("GET", next_path, params=next_params, headers=headers).json or {}
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
            for start in range(0, len(pending), BATCH_LIMIT):
                chunk = pending[start:start + BATCH_LIMIT]
                token = self.tokens.get()
                answers = self._send_batch(chunk)
                if self.tokens.can_refresh and any(answer.status == 401 for answer in answers.values()):
                    self.tokens.replace(token)
                for request in chunk:
                    answer = answers[request["id"]]
                    status = answer.status
                    retriable = (status == 429 or (status == 401 and self.tokens.can_refresh)
                                 or (status is not None and status >= 500 and request["method"] == "GET"))
                    if retriable and attempt < self.transport.max_retries:
                        retry.append(request)
                        wait = 0.0 if status == 401 else retry_after_seconds(answer.headers)
                        waits.append(wait if wait is not None else self.transport.backoff(attempt))
                    else:
                        results[request["id"]] = answer
            if retry:
                # The limiters make the next acquire() wait: every worker holds back, and nothing sleeps twice.
                wait = max(waits) + random.uniform(0, 0.05) if max(waits) > 0 else 0.0
                if any(r["method"] != "GET" for r in retry):
                    self.write_limiter.pause(wait)
                if any(r["method"] == "GET" for r in retry):
                    self.read_limiter.pause(wait)
                attempt += 1
            pending = retry
        return results

    def _send_batch(self, chunk):
        """One POST /$batch: {id: SubResponse}. Throttling counts every sub-request, so the limiters are
        charged per item."""
        writes = [r for r in chunk if r["method"] != "GET"]
        for dummy in writes:
            self.write_limiter.acquire()
        for dummy in range(len(chunk) - len(writes)):
            self.read_limiter.acquire()
        payload = dict(requests=[_batch_item(r) for r in chunk])
        try:
            body = self._send("POST", "/$batch", body=payload, idempotent=not writes).json or {}
        except TransientError as exc:
            if not exc.maybe_applied:
                raise
            # The answer to a batch of writes was lost: every item may or may not have landed.
            return dict((r["id"], SubResponse(None, {}, None, TransientError(
                str(exc), maybe_applied=True, method=r["method"], path=_path_of(r)))) for r in chunk)
        items = dict((str(item.get("id")), item) for item in body.get("responses") or [] if isinstance(item, dict))
        missing = [r["id"] for r in chunk if r["id"] not in items]
        if missing:
            raise ApiError("the $batch answer lacks responses for %s" % ", ".join(missing),
                           method="POST", path="/$batch")
        answers = {}
        for request in chunk:
            item = items[request["id"]]
            status, headers, sub_body = int(item.get("status") or 0), item.get("headers") or {}, item.get("body")
            error = self._error(status, sub_body, headers, request["method"], _path_of(request)) if status >= 400 else None
            answers[request["id"]] = SubResponse(status, headers, sub_body, error)
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
