"""Where the Graph emulator's tokens come from, as Entra ID and Azure hand them out:

- the token endpoint `POST /{tenant}/oauth2/v2.0/token`: the client-credentials grant with a client
  secret, a certificate client assertion, or a federated one (workload identity federation: a token
  of an external identity provider the app trusts through a federated identity credential)
  (https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow,
  https://learn.microsoft.com/en-us/entra/identity-platform/certificate-credentials,
  https://learn.microsoft.com/en-us/entra/workload-id/workload-identity-federation);
- the managed identity endpoints of an Azure host: the instance metadata service's
  `GET /metadata/identity/oauth2/token` (reached through AZURE_POD_IDENTITY_AUTHORITY_HOST, never
  169.254.169.254) and the App Service form `GET /msi/token` (IDENTITY_ENDPOINT + IDENTITY_HEADER);
- the Python API tests use to mint tokens, register certificates, mint federated tokens and name
  federated credentials and managed identities directly.

The pieces it is built from (AADSTS and managed identity error bodies, JWT-shaped tokens, assertion
checks, the identity provider's key) are in sandbox/msgraph_auth.py.
"""

import copy
import hmac
import os
import re
import secrets
import urllib.parse
import uuid

from sandbox.msgraph_auth import (
    ASSERTION_TYPE,
    FEDERATED_AUDIENCE,
    GRAPH_APP_ID,
    Caller,
    IdentityError,
    IssuerKey,
    TokenError,
    app_service_error,
    choose_identity,
    federated_token_claims,
    imds_error,
    is_certificate_assertion,
    load_certificate,
    mint_access_token,
    missing_parameter,
    read_jwt,
    verify_client_assertion,
    verify_federated_assertion,
)
from sandbox.server import Response, json_response

TOKEN_ROUTE = re.compile(r"/(?P<tenant>[^/]+)/oauth2/v2\.0/token")
IMDS_ROUTE = re.compile(r"/metadata/identity/oauth2/token")
APP_SERVICE_ROUTE = re.compile(r"/msi/token")
TOKEN_LIFETIME = 3599
MANAGED_IDENTITY_LIFETIME = 86399  # managed identity tokens live about a day
APP_SERVICE_API_VERSION = "2019-08-01"
IMDS_NEWEST_VERSIONS = ["2021-02-01", "2020-12-01", "2020-09-01"]
GRAPH_PUBLIC_ROOT = "https://graph.microsoft.com"
DEFAULT_APP_ROLES = ("Device.ReadWrite.All",)
DEFAULT_DELEGATED_SCOPES = ("Directory.AccessAsUser.All",)

# The identity provider the sandbox plays for workload identity federation: a Kubernetes cluster's service
# account issuer, and the service account AWX runs its execution pods under. `.test` never resolves.
WORKLOAD_ISSUER = "https://oidc.sandbox.fleetguard.test/"
WORKLOAD_SUBJECT = "system:serviceaccount:awx:awx-ee"
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


def token_fault_response(rule, headers):
    """A `status` fault on the token path: the authority's AADSTS90033 body."""
    error = TokenError(rule["status"], "temporarily_unavailable", 90033,
                       rule.get("message", "A transient error has occurred. Please try again."))
    return Response(rule["status"], error.body(), headers)


def finish_token_response(request, response):
    """The headers every answer of the token endpoint carries."""
    body = response.body if isinstance(response.body, dict) else {}
    response.headers["x-ms-request-id"] = body.get("trace_id") or str(uuid.uuid4())
    if request.header("client-request-id"):
        response.headers["client-request-id"] = request.header("client-request-id")
    response.headers["Cache-Control"] = "no-store, no-cache"
    response.headers["Pragma"] = "no-cache"


class TokenAuthority:
    """Mixin of GraphSandbox: the token endpoint and the managed identity endpoints.

    Its `__init__` sets up what the app trusts besides its secret and certificates (federated identity
    credentials, the identity provider's key) and the host's managed identities, then passes on along
    the MRO. Uses from the composed class: `tenant_id`, `tenant_domain`, `client_id`, `client_secret`,
    `app_roles`, `_certificates`, `users`, `_find_user`, and the Emulator's `lock`, `clock`, `tokens`
    and `url`.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.workload_issuer = WORKLOAD_ISSUER  # iss of the tokens mint_federated_token signs
        self.workload_subject = WORKLOAD_SUBJECT  # their default sub
        # The app's federated identity credentials: a token from `issuer` about `subject` for one of `audiences`.
        self.federated_credentials = [{"name": "awx-execution-nodes", "issuer": WORKLOAD_ISSUER,
                                       "subject": WORKLOAD_SUBJECT, "audiences": [FEDERATED_AUDIENCE]}]
        self._issuer_key = None  # made when first needed (RSA key generation takes a moment)
        self.identity_header = secrets.token_urlsafe(24)  # what IDENTITY_HEADER holds on an App Service host
        self.system_assigned_identity = dict(SYSTEM_ASSIGNED_IDENTITY)  # None: the host has none
        self.user_assigned_identities = [dict(USER_ASSIGNED_IDENTITY)]

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

    # workload identity federation

    def mint_federated_token(self, subject=None, issuer=None, audience=FEDERATED_AUDIENCE, lifetime=3600,
                             issued_at=None, path=None):
        """A token of the identity provider the sandbox plays, as a Kubernetes node projects it into
        AZURE_FEDERATED_TOKEN_FILE (signed with the sandbox's issuer key, `kid` in its header). Defaults:
        `workload_issuer`, `workload_subject`, audience api://AzureADTokenExchange, issued now. With `path`,
        also written to that file (mode 0600)."""
        with self.lock:
            key = self._issuer()
            now = self.clock() if issued_at is None else issued_at
            claims = federated_token_claims(issuer or self.workload_issuer, subject or self.workload_subject,
                                            audience, now, lifetime)
        token = key.sign(claims)
        if path:
            descriptor = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.fchmod(descriptor, 0o600)  # also when the file was there before
            with os.fdopen(descriptor, "w") as handle:
                handle.write(token)
        return token

    def add_federated_credential(self, subject, issuer=None, audiences=(FEDERATED_AUDIENCE,), name=None):
        """Make the app trust tokens of `issuer` (default: the sandbox's) about `subject`; returns the credential."""
        if not isinstance(subject, str) or not subject:
            raise ValueError("a federated identity credential needs a subject")
        audiences = [audiences] if isinstance(audiences, str) else list(audiences)
        if not audiences or not all(isinstance(audience, str) and audience for audience in audiences):
            raise ValueError("audiences must be a non-empty list of strings")
        with self.lock:
            credential = {"name": name or f"credential-{len(self.federated_credentials) + 1}",
                          "issuer": issuer or self.workload_issuer, "subject": subject, "audiences": audiences}
            self.federated_credentials.append(credential)
            return dict(credential)

    def workload_identity_environment(self, token_file):
        """What a Kubernetes node with workload identity puts in a pod's environment, pointed at the sandbox."""
        return {"AZURE_FEDERATED_TOKEN_FILE": str(token_file), "AZURE_CLIENT_ID": self.client_id,
                "AZURE_TENANT_ID": self.tenant_id, "AZURE_AUTHORITY_HOST": self.url}

    def _issuer(self):
        if self._issuer_key is None:
            self._issuer_key = IssuerKey()
        return self._issuer_key

    # managed identity

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

    def _is_graph_resource(self, request, resource):
        roots = self._own_roots(request) | {GRAPH_PUBLIC_ROOT, GRAPH_APP_ID}
        return resource.rstrip("/") in {root.rstrip("/") for root in roots}

    def _unknown_resource(self, resource):
        return TokenError(400, "invalid_resource", 500011,
                          f"The resource principal named {resource} was not found in the tenant named {self.tenant_id}."
                          " This can happen if the application has not been installed by the administrator of the "
                          "tenant or consented to by any user in the tenant. You might have sent your authentication "
                          "request to the wrong tenant.").body()["error_description"]

    # the token endpoint

    def _token_endpoint(self, request):
        try:
            caller = self._client_credentials(request)
        except TokenError as error:
            return Response(error.status, error.body())
        token = self._store_token(caller, TOKEN_LIFETIME)
        return Response(200, {"token_type": "Bearer", "expires_in": TOKEN_LIFETIME, "ext_expires_in": TOKEN_LIFETIME,
                              "access_token": token})

    def _store_token(self, caller, lifetime, user_principal_name=None):
        now = self.clock()
        token = mint_access_token(caller, now, now + lifetime, user_principal_name)
        self.tokens.add(token, now + lifetime, caller=caller)
        return token

    def _client_credentials(self, request):
        """Check a client-credentials request; returns the app Caller or raises TokenError."""
        tenant = urllib.parse.unquote(request.params["tenant"])
        if tenant.lower() not in (self.tenant_id.lower(), self.tenant_domain.lower()):
            raise TokenError(400, "invalid_request", 90002,
                             f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are "
                             "signing into the correct cloud.")
        form = self._form(request)
        self._check_grant(request, form, tenant)
        self._check_client_secret_or_assertion(request, form)
        return Caller(True, self.client_id, self.tenant_id, permissions=frozenset(self.app_roles))

    def _check_grant(self, request, form, tenant):
        """grant_type, client_id and scope, in the order Entra checks them."""
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

    def _check_client_secret_or_assertion(self, request, form):
        secret, assertion = form.get("client_secret"), form.get("client_assertion")
        if secret and assertion:
            raise TokenError(400, "invalid_request", 7000218,
                             "The request body must contain only one of the following parameters: 'client_assertion' "
                             "or 'client_secret'.")
        if assertion:
            self._check_assertion(request, form, assertion)
        elif not secret:
            raise TokenError(400, "invalid_client", 7000218,
                             "The request body must contain the following parameter: 'client_assertion' or "
                             "'client_secret'.")
        elif not hmac.compare_digest(secret.encode(), self.client_secret.encode()):
            raise TokenError(401, "invalid_client", 7000215,
                             "Invalid client secret provided. Ensure the secret being sent in the request is the "
                             f"client secret value, not the client secret ID, for a secret added to app "
                             f"'{self.client_id}'.")

    def _check_assertion(self, request, form, assertion):
        assertion_type = form.get("client_assertion_type")
        if not assertion_type:
            raise missing_parameter("client_assertion_type")
        if assertion_type != ASSERTION_TYPE:
            raise TokenError(400, "invalid_request", 50027,
                             f"Invalid client_assertion_type '{assertion_type}': expected '{ASSERTION_TYPE}'.")
        header, claims, _signed, _signature = read_jwt(assertion)
        if not is_certificate_assertion(header, claims, self.client_id):
            with self.lock:
                credentials = copy.deepcopy(self.federated_credentials)
                issuer_key = self._issuer()
            verify_federated_assertion(assertion, {issuer_key.kid: issuer_key.public_key}, credentials, self.clock())
            return
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

    # control endpoints (registered by GraphSandbox)

    def _control_mint_federated_token(self, request, payload):
        payload = payload or {}
        unknown = set(payload) - {"subject", "issuer", "audience", "lifetime", "issued_at", "path"}
        if unknown:
            raise ValueError(f"unknown federated token keys: {', '.join(sorted(unknown))}")
        token = self.mint_federated_token(**payload)
        claims = read_jwt(token)[1]
        return json_response(200, {"token": token, "path": payload.get("path"), "issuer": claims["iss"],
                                   "subject": claims["sub"], "expires_on": claims["exp"]})

    def _control_federated_credentials(self, request, payload):
        if request.method == "POST":
            if not isinstance(payload, dict):
                raise ValueError('body must be {"subject": ..., "issuer": ..., "audiences": [...], "name": ...}')
            return json_response(200, self.add_federated_credential(**payload))
        with self.lock:
            return json_response(200, {"federated_credentials": copy.deepcopy(self.federated_credentials)})

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
