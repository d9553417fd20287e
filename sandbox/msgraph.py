"""Emulator of Microsoft Graph's `device` API (v1.0 and beta) and of the Entra ID token endpoint.

One server answers both the authority (`POST /{tenant}/oauth2/v2.0/token`) and Graph (`/v1.0/...`,
`/beta/...`). `GraphSandbox` holds the generated directory (users and devices), the routes and the
control endpoints; each job is a mixin in its own module:

| module | job |
|---|---|
| `msgraph_authority.py` | the token and managed identity endpoints, `issue_token`, certificates, federated tokens |
| `msgraph_gateway.py` | bearer tokens, permissions, write throttling, the envelope of every answer |
| `msgraph_devices.py` | `/devices` and the beta user-scoped devices, `add_device` |
| `msgraph_batch.py` | `$batch` |
| `msgraph_delta.py` | `/devices/delta`: delta and skip tokens, `@removed`, `syncStateNotFound` |

The generic parts (pipeline, faults, wire log, `reset`, token expiry) come from sandbox/emulator.py.
The choices made where Microsoft's documentation is silent are listed in sandbox/README.md.
"""

import datetime
import time

from sandbox.msgraph_authority import (
    DEFAULT_APP_ROLES,
    TOKEN_ROUTE,
    TokenAuthority,
    finish_token_response,
    token_fault_response,
)
from sandbox.msgraph_batch import BatchEndpoint
from sandbox.msgraph_data import TENANT_DOMAIN, generate_fleet, graph_time
from sandbox.msgraph_delta import DeltaEndpoint
from sandbox.msgraph_devices import GUID, DeviceEndpoints
from sandbox.msgraph_gateway import WRITE_LIMITS, GraphGateway
from sandbox.msgraph_identity import APP_SERVICE_ROUTE, IMDS_ROUTE, finish_identity_response, identity_fault_response, is_identity_path
from sandbox.emulator import Emulator
from sandbox.rate_limit import RateLimiter
from sandbox.server import json_response

DEFAULT_TENANT_ID = "8f3c1a52-6d1e-4b7a-9c1e-2a5b7d9e0f11"
DEFAULT_CLIENT_ID = "5a1b2c3d-0000-4000-8000-00000000c11e"
DEFAULT_CLIENT_SECRET = "sandbox-graph-secret"

# Routes match the raw path: `$`, `(` and `)` may arrive percent-encoded, nothing else is decoded.
VERSION = r"/(?P<version>v1\.0|beta)"
DOLLAR = r"(?:\$|%24)"
KEY = r"/(?P<key>[^/]*)"
ALTERNATE_KEY = r"(?:\(|%28)(?P<alternate>[^/]*?)(?:\)|%29)"


class GraphSandbox(TokenAuthority, GraphGateway, DeviceEndpoints, DeltaEndpoint, BatchEndpoint, Emulator):
    name = "msgraph"
    fault_match_keys = ("batch_item",)
    reset_options = ("seed", "devices", "throttling", "write_limit_scale")
    ready_fields = ("tenant_id", "client_id", "client_secret")

    def __init__(self, devices=50, seed=1, throttling=True, write_limit_scale=1.0, write_limits=None,
                 tenant_id=DEFAULT_TENANT_ID, client_id=DEFAULT_CLIENT_ID, client_secret=DEFAULT_CLIENT_SECRET,
                 tenant_domain=TENANT_DOMAIN, extension_attributes_by_default=True):
        limits = {**WRITE_LIMITS, **{kind: tuple(limit) for kind, limit in (write_limits or {}).items()}}
        super().__init__(seed=seed, data_size=devices,
                         rate_limiter=RateLimiter(limits, enabled=throttling, scale=write_limit_scale))
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.tenant_domain = tenant_domain
        self.extension_attributes_by_default = extension_attributes_by_default
        self.app_roles = list(DEFAULT_APP_ROLES)  # roles of tokens from the token endpoint
        self.devices, self.users, self.user_devices = {}, {}, {}
        self._certificates = []  # registered for client assertions
        self._init_delta()
        self.regenerate()
        self._add_routes()
        self._add_control_routes()

    # the directory

    def regenerate(self):
        """New users and devices, their sign-in ages counted back from the sandbox clock's day; tokens and
        registered certificates survive."""
        self.devices, self.users, self.user_devices = generate_fleet(self.data_size, self.seed, now=self.current_time())
        self.expire_delta_tokens()  # they stand for the directory that was

    def state(self):
        return {"devices": list(self.devices.values()), "count": len(self.devices),
                "users": list(self.users.values()), "user_devices": self.user_devices}

    # the clock

    def advance_clock(self, days=0, hours=0, seconds=0, signed_in=()):
        """Let time pass: move the sandbox's clock (`clock`) forward by the given amount (negative moves it
        back), then let the devices in `signed_in` (object ids) sign in at the new time. Returns `clock_info()`.

        Everything that reads the clock follows: new sign-ins, tokens (those issued before may now be
        expired; a client fetches new ones), and the day `reset` counts generated sign-in ages back from.
        Client assertions are checked against it too, so use a client secret once the clock has moved.
        """
        delta = float(days) * 86400 + float(hours) * 3600 + float(seconds)
        ids = [str(object_id).lower() for object_id in signed_in]
        with self.lock:
            unknown = [object_id for object_id in ids if object_id not in self.devices]
            if unknown:
                raise ValueError(f"no device {', '.join(unknown)}")
            previous = self.clock
            self.clock = lambda: previous() + delta
            now = graph_time(self._clock_moment())
            for object_id in ids:
                self.devices[object_id]["approximateLastSignInDateTime"] = now
        return self.clock_info()

    def clock_info(self):
        """{"now": Graph time, "today": its UTC date, "offset_seconds": how far the clock is from real time}."""
        moment = self._clock_moment()
        return {"now": graph_time(moment), "today": moment.date().isoformat(),
                "offset_seconds": round(self.current_time() - time.time())}

    def _clock_moment(self):
        return datetime.datetime.fromtimestamp(int(self.current_time()), datetime.timezone.utc)

    def _find_user(self, reference):
        """The user with this object id or UPN, or None."""
        reference = str(reference)
        if GUID.fullmatch(reference):
            return self.users.get(reference.lower())
        return next((user for user in self.users.values()
                     if user["userPrincipalName"].lower() == reference.lower()), None)

    # routes

    def _add_routes(self):
        add = self.routes.add
        add("POST", TOKEN_ROUTE.pattern, self._token_endpoint, name="token")
        add("GET", IMDS_ROUTE.pattern, self._imds_endpoint, name="imds")
        add("GET", APP_SERVICE_ROUTE.pattern, self._app_service_endpoint, name="identity_endpoint")
        devices = VERSION + "/devices"
        add("GET", devices, self._graph(self._list_devices))
        add("GET", devices + "/" + DOLLAR + "count", self._graph(self._count_devices))
        add("GET", devices + "/delta", self._graph(self._delta_devices))
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
            add("DELETE", owner + "/devices" + KEY, self._graph(self._delete_user_device, write=True))

    # Emulator hooks that tell the authority's answers from Graph's

    def fault_status_response(self, rule, request):
        retry_after = rule.get("retry_after", 1 if rule["status"] == 429 else None)
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        if TOKEN_ROUTE.fullmatch(request.path):
            return token_fault_response(rule, headers)
        if is_identity_path(request.path):
            return identity_fault_response(rule, request, headers)
        return self.graph_fault_response(rule, headers)

    def finish_response(self, request, response):
        if TOKEN_ROUTE.fullmatch(request.path):
            finish_token_response(request, response)
        elif is_identity_path(request.path):
            finish_identity_response(request, response)
        else:
            self.finish_graph_response(request, response)

    # control endpoints (the generic ones are Emulator's)

    def _add_control_routes(self):
        add = self.control_routes.add
        add("POST", r"/_sandbox/devices", self._control_add_device)
        add("GET", r"/_sandbox/clock", lambda request, payload: json_response(200, self.clock_info()))
        add("POST", r"/_sandbox/clock", self._control_advance_clock)
        add("POST", r"/_sandbox/tokens", self._control_issue_token)
        add("POST", r"/_sandbox/certificates", self._control_register_certificate)
        add("POST", r"/_sandbox/federated_tokens", self._control_mint_federated_token)
        add("POST", r"/_sandbox/delta/expire",
            lambda request, payload: json_response(200, {"expired": self.expire_delta_tokens()}))
        for method in ("GET", "POST"):
            add(method, r"/_sandbox/federated_credentials", self._control_federated_credentials)
            add(method, r"/_sandbox/managed_identities", self._control_managed_identities)

    def _control_add_device(self, request, payload):
        if not isinstance(payload, dict):
            raise ValueError("body must be a JSON object of device fields")
        return json_response(200, self.add_device(**payload))

    def _control_advance_clock(self, request, payload):
        payload = payload or {}
        if not isinstance(payload, dict):
            raise ValueError('body must be {"days": N, "hours": N, "seconds": N, "signed_in": [object ids]}')
        unknown = set(payload) - {"days", "hours", "seconds", "signed_in"}
        if unknown:
            raise ValueError(f"unknown clock keys: {', '.join(sorted(unknown))}")
        amounts = {key: payload[key] for key in ("days", "hours", "seconds") if key in payload}
        if any(isinstance(value, bool) or not isinstance(value, (int, float)) for value in amounts.values()):
            raise ValueError("days, hours and seconds must be numbers")
        signed_in = payload.get("signed_in") or []
        if not isinstance(signed_in, list) or not all(isinstance(item, str) for item in signed_in):
            raise ValueError("signed_in must be a list of device object ids")
        return json_response(200, self.advance_clock(signed_in=signed_in, **amounts))

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
