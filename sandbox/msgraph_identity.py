"""The managed identity endpoints of the Azure host the Graph emulator plays (a mixin of GraphSandbox, through
TokenAuthority in sandbox/msgraph_authority.py): the instance metadata service's
`GET /metadata/identity/oauth2/token` (reached through AZURE_POD_IDENTITY_AUTHORITY_HOST, never 169.254.169.254) and
the App Service form `GET /msi/token` (IDENTITY_ENDPOINT + IDENTITY_HEADER), as Azure documents them
(https://learn.microsoft.com/en-us/entra/identity/managed-identities-azure-resources/how-to-use-vm-token,
https://learn.microsoft.com/en-us/azure/app-service/overview-managed-identity#rest-endpoint-reference).
"""

import copy
import hmac
import re
import secrets
import uuid

from sandbox.msgraph_auth import Caller, IdentityError, app_service_error, choose_identity, imds_error
from sandbox.server import Response, json_response

IMDS_ROUTE = re.compile(r"/metadata/identity/oauth2/token")
APP_SERVICE_ROUTE = re.compile(r"/msi/token")
MANAGED_IDENTITY_LIFETIME = 86399  # managed identity tokens live about a day
APP_SERVICE_API_VERSION = "2019-08-01"
IMDS_NEWEST_VERSIONS = ["2021-02-01", "2020-12-01", "2020-09-01"]
# The managed identities of the Azure host the sandbox plays: a system-assigned one and a user-assigned one.
SYSTEM_ASSIGNED_IDENTITY = {"client_id": "0c3e5a7b-1d2f-4e60-8a9b-5157e7a90001",
                            "principal_id": "6f1b2c3d-4e5f-4a6b-9c7d-5157e7a90011", "resource_id": None}
IDENTITY_RESOURCE_GROUP = "/subscriptions/5157e7a9-0000-4000-8000-00000000f1ee/resourceGroups/fleetguard"
USER_ASSIGNED_IDENTITY = {"client_id": "9d8c7b6a-5f4e-4d3c-8b2a-5157e7a90002",
                          "principal_id": "2a3b4c5d-6e7f-4a8b-9c0d-5157e7a90012",
                          "resource_id": IDENTITY_RESOURCE_GROUP
                          + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/fleetguard-automation"}


def is_identity_path(path):
    """Whether a path is one of the managed identity endpoints (answered in their own shapes, not Graph's)."""
    return bool(IMDS_ROUTE.fullmatch(path) or APP_SERVICE_ROUTE.fullmatch(path))


def identity_fault_response(rule, request, headers):
    """A `status` fault on a managed identity endpoint, in that endpoint's error shape."""
    status = rule["status"]
    message = rule.get("message", "The service is temporarily unavailable. Please retry.")
    if APP_SERVICE_ROUTE.fullmatch(request.path):
        error = app_service_error(status, message)
    else:
        error = imds_error(status, rule.get("code", "temporarily_unavailable" if status in (429, 503)
                                            else "server_error"), message)
    return Response(status, error.body, headers)


def finish_identity_response(request, response):
    """The request id header each managed identity endpoint adds to its answers."""
    body = response.body if isinstance(response.body, dict) else {}
    if APP_SERVICE_ROUTE.fullmatch(request.path):
        response.headers["X-CORRELATION-ID"] = body.get("correlationId") or str(uuid.uuid4())
    else:
        response.headers["x-ms-request-id"] = str(uuid.uuid4())


class ManagedIdentityEndpoints:
    """The host's managed identities (a system-assigned one, user-assigned ones) and their two token endpoints.
    Uses from the composed class: `tenant_id`, `app_roles`, `_store_token`, `_is_graph_resource`,
    `_unknown_resource`, and the Emulator's `lock`, `clock` and `url`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.identity_header = secrets.token_urlsafe(24)  # what IDENTITY_HEADER holds on an App Service host
        self.system_assigned_identity = dict(SYSTEM_ASSIGNED_IDENTITY)  # None: the host has none
        self.user_assigned_identities = [dict(USER_ASSIGNED_IDENTITY)]

    @property
    def identity_endpoint(self):
        """IDENTITY_ENDPOINT of the App Service form (None until the server listens)."""
        return self.url + "/msi/token" if self.url else None

    def add_user_assigned_identity(self, name, client_id=None, principal_id=None):
        """Assign one more user-assigned identity to the host; returns it."""
        identity = {"client_id": client_id or str(uuid.uuid4()), "principal_id": principal_id or str(uuid.uuid4()),
                    "resource_id": f"{IDENTITY_RESOURCE_GROUP}/providers/Microsoft.ManagedIdentity/"
                                   f"userAssignedIdentities/{name}"}
        with self.lock:
            self.user_assigned_identities.append(identity)
        return dict(identity)

    def managed_identity_environment(self, form="app_service"):
        """The variables that lead a client to this sandbox's managed identity endpoint: `app_service`
        (IDENTITY_ENDPOINT, IDENTITY_HEADER) or `imds` (AZURE_POD_IDENTITY_AUTHORITY_HOST)."""
        if form == "app_service":
            return {"IDENTITY_ENDPOINT": self.identity_endpoint, "IDENTITY_HEADER": self.identity_header}
        if form == "imds":
            return {"AZURE_POD_IDENTITY_AUTHORITY_HOST": self.url}
        raise ValueError("form must be app_service or imds")

    def _imds_endpoint(self, request):
        """GET /metadata/identity/oauth2/token?api-version=...&resource=...[&client_id|object_id|msi_res_id=...]"""
        try:
            if request.header("Metadata") != "true":
                raise imds_error(400, "invalid_request", "Required metadata header not specified")
            query = self._identity_query(request, lambda message: imds_error(400, "invalid_request", message))
            if not query.get("api-version"):
                raise IdentityError(400, {"error": "Bad request. api-version was not specified in the request. For "
                                                   "more information refer to aka.ms/azureimds",
                                          "newest-versions": IMDS_NEWEST_VERSIONS})
            resource = query.get("resource")
            if not resource:
                raise imds_error(400, "invalid_request", "Required audience parameter not specified")
            identity = self._chosen_identity(
                query, "object_id", "msi_res_id", lambda message: imds_error(400, "invalid_request", message))
            if not self._is_graph_resource(request, resource):
                raise imds_error(400, "invalid_resource", self._unknown_resource(resource))
        except IdentityError as error:
            return Response(error.status, error.body)
        token, now, lifetime = self._managed_identity_token(identity)
        return Response(200, {"access_token": token, "client_id": identity["client_id"], "expires_in": str(lifetime),
                              "expires_on": str(int(now) + lifetime), "ext_expires_in": str(lifetime),
                              "not_before": str(int(now)), "resource": resource, "token_type": "Bearer"})

    def _app_service_endpoint(self, request):
        """GET <IDENTITY_ENDPOINT>?api-version=2019-08-01&resource=...[&client_id|principal_id|mi_res_id=...]
        with X-IDENTITY-HEADER."""
        try:
            header = request.header("X-IDENTITY-HEADER") or ""
            if not hmac.compare_digest(header.encode(), self.identity_header.encode()):
                raise app_service_error(401, "Unauthorized: the X-IDENTITY-HEADER header is missing or does not "
                                             "match IDENTITY_HEADER.")
            query = self._identity_query(request, lambda message: app_service_error(400, message))
            if query.get("api-version") != APP_SERVICE_API_VERSION:
                raise app_service_error(400, f"The api-version '{query.get('api-version') or ''}' is not supported: "
                                             f"use {APP_SERVICE_API_VERSION}.")
            resource = query.get("resource")
            if not resource:
                raise app_service_error(400, "The resource parameter is required.")
            identity = self._chosen_identity(
                query, "principal_id", "mi_res_id",
                lambda message: app_service_error(400, "Unable to load the proper Managed Identity."))
            if not self._is_graph_resource(request, resource):
                raise app_service_error(400, self._unknown_resource(resource).splitlines()[0])
        except IdentityError as error:
            return Response(error.status, error.body)
        token, now, lifetime = self._managed_identity_token(identity)
        return Response(200, {"access_token": token, "expires_on": str(int(now) + lifetime), "resource": resource,
                              "token_type": "Bearer", "client_id": identity["client_id"]})

    @staticmethod
    def _identity_query(request, error):
        repeated = sorted(name for name, value in request.query.items() if isinstance(value, list))
        if repeated:
            raise error(f"The query parameter '{repeated[0]}' is given more than once.")
        return request.query

    def _chosen_identity(self, query, object_id_name, resource_id_name, error):
        with self.lock:
            system, users = self.system_assigned_identity, list(self.user_assigned_identities)
        selectors = {"client_id": query.get("client_id"), "principal_id": query.get(object_id_name),
                     "resource_id": query.get(resource_id_name)}
        return choose_identity(system, users, selectors, error)

    def _managed_identity_token(self, identity):
        """An app-only token for a managed identity: Graph grants it the roles the sandbox's app has."""
        now = self.clock()
        with self.lock:
            caller = Caller(True, identity["client_id"], self.tenant_id, permissions=frozenset(self.app_roles))
            token = self._store_token(caller, MANAGED_IDENTITY_LIFETIME)
        return token, now, MANAGED_IDENTITY_LIFETIME

    def _control_managed_identities(self, request, payload):
        if request.method == "POST":
            if not isinstance(payload, dict) or not isinstance(payload.get("name"), str):
                raise ValueError('body must be {"name": ..., "client_id": ..., "principal_id": ...}')
            return json_response(200, self.add_user_assigned_identity(**payload))
        with self.lock:
            return json_response(200, {
                "identity_endpoint": self.identity_endpoint, "identity_header": self.identity_header,
                "imds_host": self.url, "system_assigned": copy.deepcopy(self.system_assigned_identity),
                "user_assigned": copy.deepcopy(self.user_assigned_identities)})
