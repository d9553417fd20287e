# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""Client of Microsoft Graph for devices: tokens, Graph's error body, paging, and the device endpoints.

Tokens come from a credential (msgraph_credentials: client secret, certificate, workload identity,
managed identity) or are given ready; they are reused and replaced once on 401. Errors carry Graph's
`error.code`, `message` and `innerError.request-id`. The device verbs (find, get, patch, delete, iterate) build
the URLs from a DeviceAddress (msgraph_odata) and send reads and writes in `$batch` calls (msgraph_batch.py).
The client defines the read and write quotas on its transport, which keeps them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import json
import uuid
from urllib.parse import urlparse

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
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_batch import (
    JSON_HEADERS,
    GraphBatch,
    read_shape_problem,
)
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_credentials import select_credential
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_odata import PAGE_MAX, query_string
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_properties import IDENTITY_PROPERTIES
from ansible_collections.fleetguard.devices.plugins.module_utils.quota import scope_key
from ansible_collections.fleetguard.devices.plugins.module_utils.tokens import TokenCache
from ansible_collections.fleetguard.devices.plugins.module_utils.retry_policy import is_write
from ansible_collections.fleetguard.devices.plugins.module_utils.transport import ApiClient, HttpTransport, check_endpoint

API_VERSIONS = ("v1.0", "beta")
# How many $batch calls a directory keeps in flight (its workers): the quotas, not a queue of calls, set the pace.
BATCHES_IN_FLIGHT = 4
# Device writes: 3,000 per 150 s per app and tenant, 25 per 10 s per user (delegated). Reads: resource
# units per 10 s per app and tenant, by tenant size; a device read with $select costs 1
# (https://learn.microsoft.com/en-us/graph/throttling-limits#identity-and-access-service-limits).
WRITE_QUOTA_APP = (3000, 150.0)
WRITE_QUOTA_USER = (25, 10.0)
READ_QUOTAS = dict(small=(3500, 10.0), medium=(5000, 10.0), large=(8000, 10.0))
# The names of the quotas on the transport.
READ_QUOTA, WRITE_QUOTA = "read", "write"


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


class GraphClient(ApiClient):
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
        self._quotas_defined = False

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

    def quota_of(self, method):
        """The name of the quota a request of `method` counts against, defined on the transport on first use and
        scoped by what the token says: its tenant, its app, and for a delegated token its user. Shared with every
        process of this controller in the same scope."""
        if not self._quotas_defined:
            claims = token_claims(self.tokens.get())
            tenant = claims.get("tid") or "unknown tenant"
            app = claims.get("appid") or claims.get("azp") or getattr(self.credential, "client_id", None) or "unknown app"
            host = self.graph_root.split("://", 1)[-1]
            self.transport.define_quota(READ_QUOTA, *READ_QUOTAS[self.tenant_size],
                                        key=scope_key("graph", host, tenant, app, "read"))
            if "scp" in claims:
                write_limit, write_key = WRITE_QUOTA_USER, scope_key("graph", host, tenant, claims.get("oid"), "user writes")
            else:
                write_limit, write_key = WRITE_QUOTA_APP, scope_key("graph", host, tenant, app, "writes")
            self.transport.define_quota(WRITE_QUOTA, *write_limit, key=write_key)
            self._quotas_defined = True
        return WRITE_QUOTA if is_write(method) else READ_QUOTA

    # --- requests -------------------------------------------------------------------------------

    def url(self, path):
        """The URL of `path`: relative to the API version, or an absolute link Graph answered (@odata.nextLink,
        @odata.deltaLink), followed only on graph_endpoint's scheme and host: anywhere else the request would carry
        the bearer token there (the transport refuses redirects for the same reason). The error names the host only:
        a link's query carries state tokens."""
        if not (path.startswith("https://") or path.startswith("http://")):
            return self.base + path
        if _origin(path) != _origin(self.graph_root):
            raise ApiError("Graph answered with a link to %s, which is not graph_endpoint's scheme and host: not followed"
                           % shown(urlparse(path).hostname or "a link without a host"), status=200)
        return path

    def request(self, method, path, params=None, body=None, headers=None):
        """One Graph call, inside the read or write quota; returns the Response of a success, raises the Graph
        error otherwise."""
        return self.send(method, path, params=params, body=body, headers=headers, quota=self.quota_of(method))

    def send(self, method, path, params=None, body=None, headers=None, quota=None, idempotent=None,
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
            raise self.error(response.status, response.json, response.headers, method, path, client_request_id)
        return response

    def error(self, status, body, headers, method, path, client_request_id=None):
        """The exception for a Graph error answer, naming the request."""
        # A link's query carries paging and delta state, not what a reader of the error needs.
        error = graph_error(status, body, headers, method, path.split("?", 1)[0])
        error.client_request_id = client_request_id
        if status == 401 and not self.tokens.can_refresh:
            error.message = "the access_token was rejected (%s) and cannot be renewed without client credentials" % (
                error.message)
        return error

    def iter_pages(self, path, params=None, headers=None, limit=None, on_page=None):
        """Every item of a collection, following @odata.nextLink (ConsistencyLevel is resent each time).
        `on_page(body)` sees each page, e.g. for the @odata.count of the first."""
        count, links = 0, set()
        next_path, next_params = path, params
        while next_path:
            if next_path in links:
                # A service fault that would page for ever, spending the read quota.
                raise ApiError("Graph answered an @odata.nextLink it had already given: the pages go round in a loop",
                               method="GET", path=next_path.split("?", 1)[0], status=200)
            links.add(next_path)
            body = self.request("GET", next_path, params=next_params, headers=headers).json
            problem = read_shape_problem(body)
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

    def batch(self, requests, each=None):
        """Send requests (dicts with id, method, url relative to the version, optional body/headers) in `$batch`
        calls of 20, run by `each` (see GraphBatch.send). Returns {id: SubResponse} for every request.

        Throttled (429) parts are sent again after the longest Retry-After among them, within the transport's
        max_retries; so are failed reads (5xx), and parts refused for an expired token (401: never applied) once
        the token is replaced. A 5xx or lost answer on a write comes back as an error with `maybe_applied`: the
        caller re-reads before deciding to write again.
        """
        return GraphBatch(self).send(requests, each)

    # --- devices --------------------------------------------------------------------------------

    def find_devices(self, address, field, values, each=None):
        """The devices each value of `field` (id, device_id or display_name) names, in `$batch` calls: [[device, ...]
        per value], in order. A key that names no device gives []; a search gives what Graph matched (without case)."""
        requests = [dict(id=str(n + 1), method="GET", url=_lookup_url(address, field, value))
                    for n, value in enumerate(values)]
        answers = self.batch(requests, each)
        return [_devices_of(answers[request["id"]]) for request in requests]

    def get_devices(self, address, object_ids, each=None):
        """Fresh reads by object id, in `$batch` calls: {id: device, or None when it does not exist}."""
        found = self.find_devices(address, "id", object_ids, each)
        return dict((object_id, devices[0] if devices else None) for object_id, devices in zip(object_ids, found))

    def patch_devices(self, address, changes, each=None):
        """PATCH each (object id, properties) of `changes` in `$batch` calls: a SubResponse per change, in order."""
        requests = [dict(id=str(n + 1), method="PATCH", url=address.by_id(object_id), body=properties)
                    for n, (object_id, properties) in enumerate(changes)]
        answers = self.batch(requests, each)
        return [answers[request["id"]] for request in requests]

    def delete_devices(self, address, object_ids, each=None):
        """DELETE each device in `$batch` calls: a SubResponse per id, in order."""
        requests = [dict(id=str(n + 1), method="DELETE", url=address.by_id(object_id))
                    for n, object_id in enumerate(object_ids)]
        answers = self.batch(requests, each)
        return [answers[request["id"]] for request in requests]

    def iter_devices(self, address, odata_filter=None, advanced_query=False, limit=None, on_page=None):
        """Every device of the address's collection that matches a raw OData `$filter`, page by page, with the
        address's `$select`. `advanced_query` sends `ConsistencyLevel: eventual` and `$count=true`, which Graph
        requires for ne, not, endsWith and extension attributes."""
        options = [("$filter", odata_filter), ("$select", address.select),
                   ("$top", min(limit, PAGE_MAX) if limit else PAGE_MAX)]
        headers = None
        if advanced_query:
            options.append(("$count", "true"))
            headers = {"ConsistencyLevel": "eventual"}
        return self.iter_pages(address.collection + query_string(options), headers=headers, limit=limit, on_page=on_page)


def _origin(url):
    """(scheme, host, port) of an absolute URL, the scheme's default port filled in; None when the port is unreadable."""
    parsed = urlparse(url)
    try:
        port = parsed.port or dict(http=80, https=443).get(parsed.scheme.lower())
    except ValueError:
        return None
    return parsed.scheme.lower(), parsed.hostname, port


def _lookup_url(address, field, value):
    """Where a lookup by `field` reads: the device by key (id; deviceId in the tenant's collection), else a search."""
    if field == "id":
        return address.read(address.by_id(value))
    key_path = address.by_device_id(value) if field == "device_id" else None
    if key_path:
        return address.read(key_path)
    return address.search(IDENTITY_PROPERTIES[field], value)


def _devices_of(answer):
    """The devices of a lookup's answer: none for 404, the page's for a search, else the one read."""
    if answer.status == 404:
        return []
    if answer.error is not None:
        raise answer.error
    if "value" in answer.body:
        return answer.body["value"]
    return [answer.body]
