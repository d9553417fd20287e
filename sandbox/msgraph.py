"""Emulator of Microsoft Graph's `device` API (v1.0 and beta) and of the Entra ID token endpoint.

Follows /work/shared/specs/msgraph-device.md and seeds 001 (PATCH /devices → 204, the app-only
non-Windows rule) and 002 (beta user-scoped devices, PATCH → 200 + object). One server answers
both the authority (`POST /{tenant}/oauth2/v2.0/token`) and Graph (`/v1.0/...`, `/beta/...`);
every choice the spec leaves open is listed in sandbox/README.md.
"""

import base64
import binascii
import copy
import datetime
import hmac
import json
import re
import time
import urllib.parse
import uuid

from sandbox.msgraph_auth import (
    ASSERTION_TYPE,
    GRAPH_APP_ID,
    Caller,
    TokenError,
    load_certificate,
    mint_access_token,
    missing_parameter,
    verify_client_assertion,
)
from sandbox.msgraph_data import (
    DISPLAY_NAME_MAX,
    EXTENSION_KEYS,
    EXTENSION_VALUE_MAX,
    ROME_ONLY,
    ROME_PROPERTIES,
    TENANT_DOMAIN,
    V1_PROPERTIES,
    base_device,
    generate_fleet,
)
from sandbox.msgraph_query import ApiError, DeviceQuery, bad_request
from sandbox.odata import unquote_string
from sandbox.server import (
    ABORTING_FAULTS,
    GENERIC_FAULT_ACTIONS,
    Emulator,
    RateLimiter,
    Request,
    Response,
    json_response,
    parse_query,
    split_target,
)

DEFAULT_TENANT_ID = "8f3c1a52-6d1e-4b7a-9c1e-2a5b7d9e0f11"
DEFAULT_CLIENT_ID = "5a1b2c3d-0000-4000-8000-00000000c11e"
DEFAULT_CLIENT_SECRET = "sandbox-graph-secret"
GRAPH_PUBLIC_ROOT = "https://graph.microsoft.com"
TOKEN_LIFETIME = 3599

# Device writes (spec section 6): per app and tenant for app-only tokens, per user for delegated ones.
WRITE_LIMITS = {"app": (3000, 150.0), "user": (25, 10.0)}
THROTTLE_WARNING = 0.8  # x-ms-throttle-limit-percentage appears above this share of the limit
MAX_BATCH_REQUESTS = 20

ODATA_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
DIAGNOSTIC = json.dumps({"ServerInfo": {"DataCenter": "Sandbox", "Slice": "E", "Ring": "5", "ScaleUnit": "000",
                                        "RoleInstance": "SANDBOX01"}}, separators=(",", ":"))
UNREADABLE_JSON = ("Unable to read JSON request payload. Please ensure Content-Type header is set and payload is "
                   "of valid JSON format.")
INSUFFICIENT_PRIVILEGES = "Insufficient privileges to complete the operation."
NON_WINDOWS = "Properties other than ExtendedAttribute1..15 can be modified only on windows devices."
ME_NEEDS_DELEGATED = "/me request is only valid with delegated authentication flow."

READ_PERMISSIONS = {"Device.Read.All", "Device.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All",
                    "Directory.AccessAsUser.All", "Device.Read"}
APP_WRITE_PERMISSIONS = {"Device.ReadWrite.All", "Directory.ReadWrite.All"}
DELEGATED_WRITE_PERMISSIONS = {"Directory.AccessAsUser.All"}  # delegated Directory.ReadWrite.All gets 403 (GD#16844)
DEFAULT_APP_ROLES = ("Device.ReadWrite.All",)
DEFAULT_DELEGATED_SCOPES = ("Directory.AccessAsUser.All",)

BOOLEAN_WRITABLE = ("accountEnabled", "isCompliant", "isManaged")
STRING_WRITABLE = ("displayName", "operatingSystem", "operatingSystemVersion")
INTUNE_OWNED = ("deviceOwnership", "enrollmentProfileName", "enrollmentType", "managementType", "deviceCategory",
                "isRooted")
ROME_ALIASES = {name.capitalize(): name for name in ROME_PROPERTIES}  # seed 002 spells them Name, Model, ...

FAULT_ERRORS = {
    429: ("TooManyRequests", "Too many requests."),
    500: ("InternalServerError", "An internal server error occurred."),
    502: ("BadGateway", "The gateway received an invalid response."),
    503: ("serviceNotAvailable", "The service is temporarily unavailable. Please retry."),
    504: ("GatewayTimeout", "The gateway timed out waiting for the service."),
}

GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
TOKEN_ROUTE = re.compile(r"/(?P<tenant>[^/]+)/oauth2/v2\.0/token")
# Routes match the raw path: `$`, `(` and `)` may arrive percent-encoded, nothing else is decoded.
VERSION = r"/(?P<version>v1\.0|beta)"
DOLLAR = r"(?:\$|%24)"
KEY = r"/(?P<key>[^/]*)"
ALTERNATE_KEY = r"(?:\(|%28)(?P<alternate>[^/]*?)(?:\)|%29)"
KNOWN_SEGMENTS = ("devices", "users", "me", "$batch", "%24batch")


def graph_error(status, code, message, headers=None):
    """A Graph error; finish_response adds innerError with the request ids."""
    return Response(status, {"error": {"code": code, "message": message}}, dict(headers or {}))


def not_found(value):
    return ApiError(404, "Request_ResourceNotFound",
                    f"Resource '{value}' does not exist or one of its queried reference-property objects are not present.")


def utc_now_text():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


class GraphSandbox(Emulator):
    name = "msgraph"
    fault_actions = GENERIC_FAULT_ACTIONS + ("expire_tokens",)
    fault_match_keys = ("batch_item",)

    def __init__(self, devices=50, seed=1, throttling=True, write_limit_scale=1.0, write_limits=None,
                 tenant_id=DEFAULT_TENANT_ID, client_id=DEFAULT_CLIENT_ID, client_secret=DEFAULT_CLIENT_SECRET,
                 tenant_domain=TENANT_DOMAIN, extension_attributes_by_default=True):
        super().__init__()
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.tenant_domain = tenant_domain
        self.extension_attributes_by_default = extension_attributes_by_default
        self.app_roles = list(DEFAULT_APP_ROLES)  # roles of tokens from the token endpoint
        self.clock = time.time  # replaceable in tests to age tokens
        limits = {**WRITE_LIMITS, **{kind: tuple(limit) for kind, limit in (write_limits or {}).items()}}
        self.rate_limiter = RateLimiter(limits, enabled=throttling, scale=write_limit_scale)
        self.device_count = devices
        self.seed = seed
        self.devices, self.users, self.user_devices = {}, {}, {}
        self._tokens = {}  # access token -> {"caller", "expires_at"}
        self._issued = []
        self._certificates = []
        self._regenerate()
        self._add_routes()
        self._add_control_routes()

    # Python API for tests

    def add_device(self, registered_user=None, **fields):
        """Insert a device with the given v1.0/Rome fields over realistic defaults (duplicate
        displayNames allowed); `registered_user` (object id or UPN) registers it to that user."""
        with self.lock:
            object_id = str(fields.pop("id", None) or uuid.uuid4()).lower()
            device_id = str(fields.pop("deviceId", None) or uuid.uuid4())
            if object_id in self.devices:
                raise ValueError(f"device {object_id} already exists")
            if any(device["deviceId"].lower() == device_id.lower() for device in self.devices.values()):
                raise ValueError(f"deviceId {device_id} already exists (it is an alternate key)")
            owner = self._find_user(registered_user) if registered_user else None
            if registered_user and owner is None:
                raise ValueError(f"no user {registered_user}")
            device = base_device(
                device_id, object_id,
                fields.pop("displayName", f"FG-WS-{len(self.devices) + 1:04d}"),
                fields.pop("operatingSystem", "Windows"),
                fields.pop("operatingSystemVersion", None),
            )
            device["extensionAttributes"].update(fields.pop("extensionAttributes", None) or {})
            device.update(fields)
            self.devices[object_id] = device
            if owner:
                self.user_devices.setdefault(owner["id"], []).append(object_id)
            return copy.deepcopy(device)

    def issue_token(self, app=True, user=None, roles=None, lifetime=3600):
        """Mint an access token directly: app-only, or delegated for `user` (object id or UPN;
        default: the first user). `roles` are app roles or delegated scopes."""
        with self.lock:
            if app:
                caller = Caller(True, self.client_id, self.tenant_id,
                                permissions=frozenset(roles if roles is not None else self.app_roles))
                return self._store_token(caller, lifetime)
            owner = self._find_user(user) if user else next(iter(self.users.values()), None)
            if owner is None:
                raise ValueError(f"no user {user}")
            caller = Caller(False, self.client_id, self.tenant_id, owner["id"],
                            frozenset(roles if roles is not None else DEFAULT_DELEGATED_SCOPES))
            return self._store_token(caller, lifetime, owner["userPrincipalName"])

    def register_certificate(self, cert_pem):
        """Accept client assertions signed with this certificate's key; returns its thumbprints."""
        certificate = load_certificate(cert_pem)
        with self.lock:
            self._certificates.append(certificate)
        return {name: certificate[name] for name in ("x5t", "x5t#S256", "thumbprint")}

    def expire_tokens(self):
        """Make every issued access token expired; returns how many were still valid."""
        with self.lock:
            now = self.clock()
            valid = [info for info in self._tokens.values() if info["expires_at"] > now]
            for info in valid:
                info["expires_at"] = now
            return len(valid)

    def issued_tokens(self):
        """Every access token issued so far, expired ones included."""
        with self.lock:
            return list(self._issued)

    def reset(self, seed=None, devices=None, throttling=None, write_limit_scale=None):
        """Regenerate users and devices (tokens, certificates and the wire log survive); clears
        faults and throttling windows."""
        with self.lock:
            if seed is not None:
                self.seed = seed
            if devices is not None:
                self.device_count = devices
            self._regenerate()
        self.rate_limiter.configure(enabled=throttling, scale=write_limit_scale)
        self.faults.clear()

    def ready_info(self):
        return {self.name: self.url, "tenant_id": self.tenant_id, "client_id": self.client_id,
                "client_secret": self.client_secret}

    # Emulator hooks

    def fault_applies(self, rule, request):
        """`match.batch_item`: true = only batch sub-requests, false = only top-level requests,
        a string = only the sub-request with that id."""
        wanted = rule["match"].get("batch_item")
        item = request.context.get("batch_item")
        if wanted is None:
            return True
        if isinstance(wanted, bool):
            return (item is not None) == wanted
        return item is not None and item.lower() == str(wanted).lower()

    def apply_fault(self, rule, request):
        if rule["action"] == "expire_tokens":
            self.expire_tokens()

    def fault_status_response(self, rule, request):
        status = rule["status"]
        retry_after = rule.get("retry_after", 1 if status == 429 else None)
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        if TOKEN_ROUTE.fullmatch(request.path):
            error = TokenError(status, "temporarily_unavailable", 90033,
                               rule.get("message", "A transient error has occurred. Please try again."))
            return Response(status, error.body(), headers)
        if status == 429:
            headers["x-ms-throttle-scope"] = f"Tenant_Application/ReadWrite/{self.client_id}/{self.tenant_id}"
            headers["x-ms-throttle-information"] = rule.get("throttle_information", "WriteLimitExceeded")
        code, message = FAULT_ERRORS.get(status, (f"Status{status}", f"Sandbox fault {status}."))
        return graph_error(status, rule.get("code", code), rule.get("message", message), headers)

    def finish_response(self, request, response):
        if TOKEN_ROUTE.fullmatch(request.path):
            self._finish_token_response(request, response)
            return
        request_id, client_request_id = self._request_ids(request)
        if request.context.get("batch_item") is None:  # sub-responses carry only their own headers
            response.headers.update({
                "request-id": request_id,
                "client-request-id": client_request_id,
                "x-ms-ags-diagnostic": DIAGNOSTIC,
                "Strict-Transport-Security": "max-age=31536000",
            })
        body = response.body
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            body["error"]["innerError"] = {"date": utc_now_text(), "request-id": request_id,
                                           "client-request-id": client_request_id}
            response.content_type = response.content_type or "application/json"
        elif isinstance(body, (dict, list)):
            response.content_type = response.content_type or ODATA_JSON
            response.headers["OData-Version"] = "4.0"
        if 200 <= response.status < 300:
            response.headers.setdefault("Cache-Control", "no-cache")
            response.headers["x-ms-resource-unit"] = "1"

    def api_code(self, response):
        body = response.body
        if not isinstance(body, dict):
            return None
        if isinstance(body.get("error"), dict):
            return body["error"].get("code")
        if body.get("error_codes"):
            return f"AADSTS{body['error_codes'][0]}"
        return None

    def wire_fields(self, request):
        return {"batch_item": request.context.get("batch_item")}

    def internal_error(self, request, exc):
        return graph_error(500, "InternalServerError", f"An internal server error occurred: {exc}")

    def not_found(self, request):
        if self.routes.methods_for(request.path):
            return graph_error(405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.")
        segments = request.path.split("/")[1:] or [""]
        if segments[0] not in ("v1.0", "beta"):
            return graph_error(400, "BadRequest", f"Invalid version: {urllib.parse.unquote(segments[0])}")
        rest = [segment for segment in segments[1:] if segment] or [""]
        segment = rest[0] if rest[0] not in KNOWN_SEGMENTS else rest[-1]
        return graph_error(400, "BadRequest", f"Resource not found for the segment '{urllib.parse.unquote(segment)}'.")

    # routes

    def _add_routes(self):
        add = self.routes.add
        add("POST", TOKEN_ROUTE.pattern, self._token_endpoint, name="token")
        devices = VERSION + "/devices"
        add("GET", devices, self._graph(self._list_devices))
        add("GET", devices + "/" + DOLLAR + "count", self._graph(self._count_devices))
        for one_device in (devices + KEY, devices + ALTERNATE_KEY):
            add("GET", one_device, self._graph(self._get_device))
            add("PATCH", one_device, self._graph(self._patch_device, write=True))
            add("DELETE", one_device, self._graph(self._delete_device, write=True))
        add("POST", VERSION + "/" + DOLLAR + "batch", self._graph(self._batch))
        for owner in (r"/(?P<version>beta)/users/(?P<user>[^/]+)", r"/(?P<version>beta)/(?P<me>me)"):
            add("GET", owner + "/devices", self._graph(self._list_user_devices))
            add("PATCH", owner + "/devices", self._graph(self._patch_user_device, write=True))
            add("GET", owner + "/devices" + KEY, self._graph(self._get_user_device))
            add("PATCH", owner + "/devices" + KEY, self._graph(self._patch_user_device, write=True))

    def _graph(self, handler, write=False):
        """Wrap a Graph handler with token validation, permissions and device-write throttling."""

        def endpoint(request):
            try:
                caller = self._authenticate(request)
                self._authorize(caller, write)
                usage = self._count_write(caller) if write else None
                response = handler(request, caller)
            except ApiError as error:
                return graph_error(error.status, error.code, error.message, error.headers)
            if usage is not None:
                response.headers["x-ms-throttle-limit-percentage"] = usage
            return response

        return endpoint

    # token endpoint (spec section 2)

    def _token_endpoint(self, request):
        try:
            caller = self._client_credentials(request)
        except TokenError as error:
            return Response(error.status, error.body())
        with self.lock:
            token = self._store_token(caller, TOKEN_LIFETIME)
        return Response(200, {"token_type": "Bearer", "expires_in": TOKEN_LIFETIME, "ext_expires_in": TOKEN_LIFETIME,
                              "access_token": token})

    def _client_credentials(self, request):
        """Check a client-credentials request; returns the app Caller or raises TokenError."""
        tenant = urllib.parse.unquote(request.params["tenant"])
        if tenant.lower() not in (self.tenant_id.lower(), self.tenant_domain.lower()):
            raise TokenError(400, "invalid_request", 90002,
                             f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are "
                             "signing into the correct cloud.")
        form = self._form(request)
        grant_type = form.get("grant_type")
        if not grant_type:
            raise missing_parameter("grant_type")
        if grant_type != "client_credentials":
            raise TokenError(400, "unsupported_grant_type", 70003,
                             f"The app requested an unsupported grant type '{grant_type}'.")
        client_id = form.get("client_id")
        if not client_id:
            raise missing_parameter("client_id")
        if client_id.lower() != self.client_id.lower():
            raise TokenError(400, "unauthorized_client", 700016,
                             f"Application with identifier '{client_id}' was not found in the directory '{tenant}'. "
                             "This can happen if the application has not been installed by the administrator of the "
                             "tenant or consented to by any user in the tenant.")
        scope = form.get("scope")
        if not scope:
            raise missing_parameter("scope")
        if scope.strip() not in self._accepted_scopes(request):
            raise TokenError(400, "invalid_scope", 70011,
                             f"The provided value for the input parameter 'scope' is not valid. The scope {scope} is "
                             "not valid.")
        secret, assertion = form.get("client_secret"), form.get("client_assertion")
        if secret and assertion:
            raise TokenError(400, "invalid_request", 7000218,
                             "The request body must contain only one of the following parameters: 'client_assertion' "
                             "or 'client_secret'.")
        if secret:
            if not hmac.compare_digest(secret.encode(), self.client_secret.encode()):
                raise TokenError(401, "invalid_client", 7000215,
                                 "Invalid client secret provided. Ensure the secret being sent in the request is the "
                                 f"client secret value, not the client secret ID, for a secret added to app "
                                 f"'{self.client_id}'.")
        elif assertion:
            self._check_assertion(request, form, assertion)
        else:
            raise TokenError(400, "invalid_client", 7000218,
                             "The request body must contain the following parameter: 'client_assertion' or "
                             "'client_secret'.")
        return Caller(True, self.client_id, self.tenant_id, permissions=frozenset(self.app_roles))

    def _check_assertion(self, request, form, assertion):
        assertion_type = form.get("client_assertion_type")
        if not assertion_type:
            raise missing_parameter("client_assertion_type")
        if assertion_type != ASSERTION_TYPE:
            raise TokenError(400, "invalid_request", 50027,
                             f"Invalid client_assertion_type '{assertion_type}': expected '{ASSERTION_TYPE}'.")
        with self.lock:
            certificates = list(self._certificates)
        audiences = {f"{base}/{tenant}/oauth2/v2.0/token"
                     for base in self._own_roots(request) for tenant in (self.tenant_id, self.tenant_domain)}
        verify_client_assertion(assertion, certificates, audiences, self.client_id, self.clock())

    @staticmethod
    def _form(request):
        if request.media_type() != "application/x-www-form-urlencoded":
            raise missing_parameter("grant_type")
        parsed = urllib.parse.parse_qs(request.body.decode("utf-8", errors="replace"), keep_blank_values=True)
        return {name: values[0] for name, values in parsed.items()}

    def _own_roots(self, request):
        """This server's root URL as configured and as the client addressed it (Host header)."""
        roots = {self.url}
        host = request.header("Host")
        if host:
            roots.add(f"http://{host}")
        return roots

    def _accepted_scopes(self, request):
        roots = self._own_roots(request) | {GRAPH_PUBLIC_ROOT, GRAPH_APP_ID}
        return {f"{root}/.default" for root in roots}

    def _finish_token_response(self, request, response):
        body = response.body if isinstance(response.body, dict) else {}
        response.headers["x-ms-request-id"] = body.get("trace_id") or str(uuid.uuid4())
        if request.header("client-request-id"):
            response.headers["client-request-id"] = request.header("client-request-id")
        response.headers["Cache-Control"] = "no-store, no-cache"
        response.headers["Pragma"] = "no-cache"

    def _store_token(self, caller, lifetime, user_principal_name=None):
        now = self.clock()
        token = mint_access_token(caller, now, now + lifetime, user_principal_name)
        self._tokens[token] = {"caller": caller, "expires_at": now + lifetime}
        self._issued.append(token)
        return token

    # authentication, permissions, throttling

    def _authenticate(self, request):
        authorization = (request.header("Authorization") or "").strip()
        bearer = re.fullmatch(r"(?i)bearer(?:\s+(.*))?", authorization)
        token = (bearer.group(1) or "").strip() if bearer else ""
        if not token:
            raise self._unauthenticated("Access token is empty.")
        with self.lock:
            info = self._tokens.get(token)
            if info is None:
                if token.count(".") != 2:
                    raise self._unauthenticated("CompactToken parsing failed with error code: 80049217")
                raise self._unauthenticated("CompactToken validation failed with reason code: 80049228.")
            if info["expires_at"] <= self.clock():
                raise self._unauthenticated("Lifetime validation failed, the token is expired.")
            return info["caller"]

    def _unauthenticated(self, message):
        challenge = (f'Bearer realm="", authorization_uri="{self.url}/common/oauth2/authorize", '
                     f'client_id="{GRAPH_APP_ID}"')
        return ApiError(401, "InvalidAuthenticationToken", message, {"WWW-Authenticate": challenge})

    @staticmethod
    def _authorize(caller, write):
        if write:
            needed = APP_WRITE_PERMISSIONS if caller.app else DELEGATED_WRITE_PERMISSIONS
        else:
            needed = READ_PERMISSIONS
        if not caller.permissions & needed:
            raise ApiError(403, "Authorization_RequestDenied", INSUFFICIENT_PRIVILEGES)

    def _count_write(self, caller):
        """Count one device write; raises the 429 when the caller's window is full. Returns the
        x-ms-throttle-limit-percentage value when usage is high, else None."""
        if caller.app:
            operation, key = "app", f"{caller.client_id}/{caller.tenant_id}"
            scope = f"Tenant_Application/ReadWrite/{caller.client_id}/{caller.tenant_id}"
        else:
            operation, key = "user", caller.user_id
            scope = f"Tenant_User/ReadWrite/{caller.tenant_id}/{caller.user_id}"
        decision = self.rate_limiter.check(operation, key)
        if not decision.allowed:
            raise ApiError(429, "TooManyRequests", "Too many requests.", {
                "Retry-After": str(decision.reset),
                "x-ms-throttle-scope": scope,
                "x-ms-throttle-information": "WriteLimitExceeded",
            })
        if decision.limit and decision.used >= THROTTLE_WARNING * decision.limit:
            return f"{decision.used / decision.limit:.1f}"
        return None

    # /devices (v1.0 and beta)

    def _list_devices(self, request, caller):
        with self.lock:
            return self._collection(request, request.params["version"], list(self.devices.values()), "devices")

    def _count_devices(self, request, caller):
        if (request.header("ConsistencyLevel") or "").strip().lower() != "eventual":
            raise bad_request("$count is not currently supported.")
        query = self._collection_query(request, request.params["version"], counting=True)
        with self.lock:
            total = query.page(list(self.devices.values()))[2]
        return Response(200, str(total), content_type="text/plain")

    def _get_device(self, request, caller):
        version = request.params["version"]
        query = self._entity_query(request, version)
        with self.lock:
            device = self._find_device(request)
            return Response(200, {
                "@odata.context": f"{self.url}/{version}/$metadata#devices{query.context_suffix()}/$entity",
                **query.render(device, self._registered_users),
            })

    def _patch_device(self, request, caller):
        changes = self._json_object(request)
        with self.lock:
            device = self._find_device(request)
            self._apply(device, self._checked_changes(changes, device, caller, rome=False))
        return Response(204)

    def _delete_device(self, request, caller):
        with self.lock:
            device = self._find_device(request)
            del self.devices[device["id"]]
            for owned in self.user_devices.values():
                if device["id"] in owned:
                    owned.remove(device["id"])
        return Response(204)

    # beta /users/{id|upn}/devices and /me/devices (seed 002)

    def _list_user_devices(self, request, caller):
        with self.lock:
            owner = self._owner(request, caller)
            owned = [self.devices[device_id] for device_id in self.user_devices.get(owner["id"], [])]
            return self._collection(request, "user", owned, f"users('{owner['id']}')/devices")

    def _get_user_device(self, request, caller):
        query = self._entity_query(request, "user")
        with self.lock:
            owner = self._owner(request, caller)
            device = self._owned_device(owner, request.params["key"])
            return self._user_device_response(owner, device, query)

    def _patch_user_device(self, request, caller):
        """Seed 002: merge the given properties (Rome ones included), answer 200 with the device."""
        changes = self._json_object(request)
        query = self._entity_query(request, "user")
        with self.lock:
            owner = self._owner(request, caller)
            if request.params.get("key") is None:
                device = self._device_named_in_body(owner, changes)
            else:
                device = self._owned_device(owner, request.params["key"])
            self._apply(device, self._checked_changes(changes, device, caller, rome=True))
            return self._user_device_response(owner, device, query)

    def _owner(self, request, caller):
        if request.params.get("me"):
            if caller.app:
                raise bad_request(ME_NEEDS_DELEGATED, code="BadRequest")
            owner = self.users.get(caller.user_id)
            if owner is None:
                raise not_found(caller.user_id)
            return owner
        reference = urllib.parse.unquote(request.params["user"])
        owner = self._find_user(reference)
        if owner is None:
            raise not_found(reference)
        return owner

    def _owned_device(self, owner, raw_key):
        object_id = self._object_id(urllib.parse.unquote(raw_key))
        if object_id not in self.user_devices.get(owner["id"], []):
            raise not_found(object_id)
        return self.devices[object_id]

    def _device_named_in_body(self, owner, changes):
        """PATCH on the collection (as seed 002 writes it): the body's `id` names the device,
        or the user has exactly one."""
        if "id" in changes:
            object_id = changes.pop("id")
            if not isinstance(object_id, str):
                raise bad_request("Invalid value specified for property 'id' of resource 'Device'.")
            return self._owned_device(owner, object_id)
        owned = self.user_devices.get(owner["id"], [])
        if len(owned) != 1:
            raise bad_request(f"The user has {len(owned)} devices: name the one to update with 'id' in the body.")
        return self.devices[owned[0]]

    def _user_device_response(self, owner, device, query):
        return Response(200, {
            "@odata.context": f"{self.url}/beta/$metadata#users('{owner['id']}')/devices{query.context_suffix()}/$entity",
            **query.render(device, self._registered_users),
        })

    # $batch (spec section 7)

    def _batch(self, request, caller):
        if request.context.get("batch_item") is not None:
            raise bad_request("Nested batch requests are not supported.", code="BadRequest")
        items = self._batch_items(self._json_object(request))
        statuses, answers = {}, []
        for item in self._dependency_order(items):
            answer = self._run_batch_item(request, item, statuses)
            if request.abort:  # a reset fault hit this item: the connection drops, nothing is answered
                return Response(200, {"responses": []})
            statuses[item["id"].lower()] = answer["status"]
            answers.append(answer)
        # Clients must match answers by id: never hand them back in request order.
        return Response(200, {"responses": answers[::-1]})

    @staticmethod
    def _batch_items(payload):
        requests = payload.get("requests")
        if not isinstance(requests, list) or not requests:
            raise bad_request("Invalid batch payload format: 'requests' must be a non-empty array.", code="BadRequest")
        if len(requests) > MAX_BATCH_REQUESTS:
            raise bad_request(f"The batch contains {len(requests)} requests; at most {MAX_BATCH_REQUESTS} are allowed.",
                              code="BadRequest")
        seen = set()
        for index, item in enumerate(requests):
            if not isinstance(item, dict):
                raise bad_request(f"Invalid batch payload format: request {index} is not an object.", code="BadRequest")
            for name in ("id", "method", "url"):
                if not isinstance(item.get(name), str) or not item[name]:
                    raise bad_request(f"Invalid batch payload format: request {index} has no '{name}'.",
                                      code="BadRequest")
            if item["id"].lower() in seen:  # ids are case-insensitive
                raise bad_request(f"Request Id {item['id']} has to be unique in a batch.", code="BadRequest")
            seen.add(item["id"].lower())
            depends_on = item.get("dependsOn", [])
            if not isinstance(depends_on, list) or not all(isinstance(name, str) for name in depends_on):
                raise bad_request(f"Invalid batch payload format: dependsOn of request {item['id']} must be an array "
                                  "of request ids.", code="BadRequest")
            if not isinstance(item.get("headers", {}), dict):
                raise bad_request(f"Invalid batch payload format: headers of request {item['id']} must be an object.",
                                  code="BadRequest")
        for item in requests:
            for name in item.get("dependsOn", []):
                if name.lower() not in seen:
                    raise bad_request(f"Request {item['id']} depends on request {name}, which is not in the batch.",
                                      code="BadRequest")
        return requests

    @staticmethod
    def _dependency_order(items):
        """Requests in an order where each comes after the ones it depends on (else request order)."""
        done, ordered, pending = set(), [], list(items)
        while pending:
            ready = next((item for item in pending
                          if all(name.lower() in done for name in item.get("dependsOn", []))), None)
            if ready is None:
                raise bad_request("The dependsOn references of the batch requests form a cycle.", code="BadRequest")
            pending.remove(ready)
            done.add(ready["id"].lower())
            ordered.append(ready)
        return ordered

    def _run_batch_item(self, outer, item, statuses):
        """Dispatch one sub-request through the normal pipeline (faults, routes, throttling, wire log)."""
        item_request = self._batch_item_request(outer, item)
        failed = [name for name in item.get("dependsOn", []) if not 200 <= statuses[name.lower()] < 300]
        if failed:
            response = graph_error(424, "FailedDependency", f"The request it depends on ({failed[0]}) failed.")
        elif "body" in item and not item_request.header("Content-Type"):
            response = graph_error(400, "BadRequest",
                                   f"Write request id : {item['id']} does not contain Content-Type header or body.")
        elif re.match(r"[A-Za-z][A-Za-z0-9+.-]*:|//", item["url"]):
            response = graph_error(400, "BadRequest", "Batch request URLs must be relative, e.g. /devices/{id}.")
        else:
            response, fault = self.run(item_request)
            if fault in ABORTING_FAULTS:
                outer.abort = True
                return None
            return self._batch_answer(item["id"], response)
        self.finish_response(item_request, response)
        return self._batch_answer(item["id"], response)

    def _batch_item_request(self, outer, item):
        request_id, client_request_id = self._request_ids(outer)
        target = f"/{outer.params['version']}/{item['url'].lstrip('/')}"
        path, query_string = split_target(target)
        # The sub-request runs as the batch's caller, whatever Authorization it carries itself.
        headers = {str(name): str(value) for name, value in item.get("headers", {}).items()
                   if str(name).lower() != "authorization"}
        if outer.header("Authorization"):
            headers["Authorization"] = outer.header("Authorization")
        return Request(
            method=item["method"].upper(),
            target=target,
            path=path,
            query=parse_query(query_string),
            headers=headers,
            body=self._batch_item_body(item),
            connection_id=outer.connection_id,
            context={"batch_item": item["id"], "request_id": request_id, "client_request_id": client_request_id},
        )

    @staticmethod
    def _batch_item_body(item):
        body = item.get("body")
        if body is None:
            return b""
        if isinstance(body, str):  # a non-JSON body travels base64-encoded
            try:
                return base64.b64decode(body, validate=True)
            except binascii.Error:
                return body.encode("utf-8")
        return json.dumps(body).encode("utf-8")

    @staticmethod
    def _batch_answer(item_id, response):
        payload, content_type = response.encode()
        answer = {"id": item_id, "status": response.status, "headers": dict(response.headers)}
        if response.body is not None:
            answer["headers"]["Content-Type"] = content_type
            if isinstance(response.body, (dict, list)):
                answer["body"] = response.body
            else:
                answer["body"] = base64.b64encode(payload).decode("ascii")
        return answer

    # shared pieces of the handlers

    def _collection(self, request, view, devices, entity_set):
        """One page of a device collection, with @odata.count and @odata.nextLink as Graph sends them."""
        query = self._collection_query(request, view)
        items, next_token, total = query.page(devices)
        version = "beta" if view == "user" else view
        body = {"@odata.context": f"{self.url}/{version}/$metadata#{entity_set}{query.context_suffix()}"}
        if query.count and query.after is None:  # only on the first page
            body["@odata.count"] = total
        if next_token:
            body["@odata.nextLink"] = self._next_link(request, next_token)
        body["value"] = [query.render(device, self._registered_users) for device in items]
        return Response(200, body)

    def _collection_query(self, request, view, counting=False):
        return DeviceQuery.for_collection(request, view, counting=counting,
                                          extension_attributes_by_default=self.extension_attributes_by_default)

    def _entity_query(self, request, view):
        return DeviceQuery.for_entity(request, view,
                                      extension_attributes_by_default=self.extension_attributes_by_default)

    def _next_link(self, request, skiptoken):
        """The same request with $skiptoken replaced, as an absolute URL (ConsistencyLevel is not carried)."""
        query_string = split_target(request.target)[1]
        kept = [part for part in query_string.split("&")
                if part and urllib.parse.unquote_plus(part.split("=", 1)[0]).lower().lstrip("$") != "skiptoken"]
        return f"{self.url}{request.path}?{'&'.join(kept + ['$skiptoken=' + skiptoken])}"

    def _find_device(self, request):
        """The device named by /devices/{id} or /devices(deviceId='…'); raises 400 or 404."""
        if request.params.get("alternate") is None:
            object_id = self._object_id(urllib.parse.unquote(request.params["key"]))
            if object_id not in self.devices:
                raise not_found(object_id)
            return self.devices[object_id]
        predicate = urllib.parse.unquote(request.params["alternate"])
        named = re.fullmatch(r"\s*deviceId\s*=\s*(.*?)\s*", predicate, re.IGNORECASE | re.DOTALL)
        literal = named.group(1) if named else predicate.strip()
        value = unquote_string(literal)
        if value is None:
            raise bad_request(f"Invalid key predicate '({predicate})': the key must be a string literal in single "
                              "quotes, with quotes inside it doubled.")
        if not named:  # devices('{id}') is the OData spelling of devices/{id}
            object_id = self._object_id(value)
            if object_id not in self.devices:
                raise not_found(object_id)
            return self.devices[object_id]
        for device in self.devices.values():
            if device["deviceId"].lower() == value.lower():
                return device
        raise not_found(value)

    @staticmethod
    def _object_id(text):
        if not GUID.fullmatch(text):
            raise bad_request(f"Invalid object identifier '{text}'.")
        return text.lower()

    def _find_user(self, reference):
        reference = str(reference)
        if GUID.fullmatch(reference):
            return self.users.get(reference.lower())
        return next((user for user in self.users.values()
                     if user["userPrincipalName"].lower() == reference.lower()), None)

    def _registered_users(self, device_id):
        """$expand=registeredOwners / registeredUsers: the users the device is registered to."""
        return [{"@odata.type": "#microsoft.graph.user", **copy.deepcopy(self.users[user_id])}
                for user_id, owned in self.user_devices.items() if device_id in owned and user_id in self.users]

    @staticmethod
    def _json_object(request):
        if request.media_type() != "application/json":
            raise bad_request(UNREADABLE_JSON, code="BadRequest")
        try:
            payload = request.json()
        except (ValueError, UnicodeDecodeError) as exc:
            raise bad_request(UNREADABLE_JSON, code="BadRequest") from exc
        if not isinstance(payload, dict):
            raise bad_request(UNREADABLE_JSON, code="BadRequest")
        return payload

    def _checked_changes(self, changes, device, caller, rome):
        """Validate a PATCH body against the device and the caller (spec section 4.4):
        bad or read-only keys → 400, Intune-owned keys → 403, app-only on non-Windows → 400."""
        changes = dict(changes)
        odata_type = changes.pop("@odata.type", "#microsoft.graph.device")
        if odata_type not in ("#microsoft.graph.device", "microsoft.graph.device"):
            raise bad_request(f"Invalid @odata.type '{odata_type}': expected '#microsoft.graph.device'.")
        if rome:
            changes = {ROME_ALIASES.get(key, key): value for key, value in changes.items()}
        for key, value in changes.items():
            if key in INTUNE_OWNED:
                continue
            if key in BOOLEAN_WRITABLE + STRING_WRITABLE + ("extensionAttributes",) or (rome and key in ROME_PROPERTIES):
                self._check_value(key, value)
            elif key in V1_PROPERTIES + ROME_ONLY:
                raise bad_request(f"Property '{key}' is read-only and cannot be set.")
            else:
                raise bad_request(f"Property '{key}' does not exist as a declared property or extension property.")
        if any(key in INTUNE_OWNED for key in changes):
            raise ApiError(403, "Authorization_RequestDenied", INSUFFICIENT_PRIVILEGES)
        exempt = ("extensionAttributes",) + (ROME_PROPERTIES if rome else ())
        if caller.app and (device.get("operatingSystem") or "").lower() != "windows":
            if any(key not in exempt for key in changes):
                raise bad_request(NON_WINDOWS)
        return changes

    @staticmethod
    def _check_value(key, value):
        invalid = bad_request(f"Invalid value specified for property '{key}' of resource 'Device'.")
        if key in BOOLEAN_WRITABLE:
            if not isinstance(value, bool):
                raise invalid
        elif key == "extensionAttributes":
            if not isinstance(value, dict):
                raise invalid
            for name, text in value.items():
                if name not in EXTENSION_KEYS:
                    raise bad_request(f"Property '{name}' does not exist as a declared property or extension property "
                                      "of 'extensionAttributes'.")
                if text is not None and not isinstance(text, str):
                    raise bad_request(f"Invalid value specified for property '{name}' of resource 'Device'.")
                if text is not None and len(text) > EXTENSION_VALUE_MAX:
                    raise bad_request(f"Invalid value specified for property '{name}' of resource 'Device': longer "
                                      f"than {EXTENSION_VALUE_MAX} characters.")
        elif key in STRING_WRITABLE:
            if not isinstance(value, str) or not value.strip():
                raise invalid
            if key == "displayName" and len(value) > DISPLAY_NAME_MAX:
                raise invalid
        elif value is not None and not isinstance(value, str):  # Rome properties: strings or null
            raise invalid

    @staticmethod
    def _apply(device, changes):
        for key, value in changes.items():
            if key == "extensionAttributes":
                for name, text in value.items():
                    device["extensionAttributes"][name] = text or None  # the directory keeps no empty strings
            else:
                device[key] = value

    def _request_ids(self, request):
        """(request-id, client-request-id): one pair per top-level request, shared by its batch items."""
        if "request_id" not in request.context:
            request_id = str(uuid.uuid4())
            request.context["request_id"] = request_id
            request.context["client_request_id"] = request.header("client-request-id") or request_id
        return request.context["request_id"], request.context["client_request_id"]

    def _regenerate(self):
        self.devices, self.users, self.user_devices = generate_fleet(self.device_count, self.seed)

    # control endpoints

    def _add_control_routes(self):
        add = self.control_routes.add
        add("GET", r"/_sandbox/state", self._control_state)
        add("POST", r"/_sandbox/reset", self._control_reset)
        add("POST", r"/_sandbox/devices", self._control_add_device)
        add("POST", r"/_sandbox/expire_tokens", lambda request, payload: json_response(200, {"expired": self.expire_tokens()}))
        add("POST", r"/_sandbox/tokens", self._control_issue_token)
        add("POST", r"/_sandbox/certificates", self._control_register_certificate)

    def _control_state(self, request, payload):
        with self.lock:
            return json_response(200, {
                "devices": copy.deepcopy(list(self.devices.values())),
                "count": len(self.devices),
                "users": copy.deepcopy(list(self.users.values())),
                "user_devices": copy.deepcopy(self.user_devices),
            })

    def _control_reset(self, request, payload):
        payload = payload or {}
        unknown = set(payload) - {"seed", "devices", "throttling", "write_limit_scale"}
        if unknown:
            raise ValueError(f"unknown reset keys: {', '.join(sorted(unknown))}")
        self.reset(**payload)
        return json_response(200, {"seed": self.seed, "devices": self.device_count,
                                   "throttling": self.rate_limiter.enabled,
                                   "write_limit_scale": self.rate_limiter.scale})

    def _control_add_device(self, request, payload):
        if not isinstance(payload, dict):
            raise ValueError("body must be a JSON object of device fields")
        return json_response(200, self.add_device(**payload))

    def _control_issue_token(self, request, payload):
        payload = payload or {}
        unknown = set(payload) - {"app", "user", "roles", "lifetime"}
        if unknown:
            raise ValueError(f"unknown token keys: {', '.join(sorted(unknown))}")
        return json_response(200, {"access_token": self.issue_token(**payload)})

    def _control_register_certificate(self, request, payload):
        if not isinstance(payload, dict) or not isinstance(payload.get("pem"), str):
            raise ValueError('body must be {"pem": "-----BEGIN CERTIFICATE-----..."}')
        return json_response(200, self.register_certificate(payload["pem"]))
