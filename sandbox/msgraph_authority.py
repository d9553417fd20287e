"""Where the Graph emulator's tokens come from, as Entra ID and Azure hand them out:

- the token endpoint `POST /{tenant}/oauth2/v2.0/token`: the client-credentials grant with a client
  secret, a certificate client assertion, or a federated one (workload identity federation: a token
  of an external identity provider the app trusts through a federated identity credential)
  (https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow,
  https://learn.microsoft.com/en-us/entra/identity-platform/certificate-credentials,
  https://learn.microsoft.com/en-us/entra/workload-id/workload-identity-federation);
- the managed identity endpoints of an Azure host (sandbox/msgraph_identity.py, a mixin this one builds on);
- the Python API tests use to mint tokens, register certificates, mint federated tokens and name
  federated credentials and managed identities directly.

The pieces it is built from (AADSTS and managed identity error bodies, JWT-shaped tokens, assertion
checks, the identity provider's key) are in sandbox/msgraph_auth.py.
"""

import copy
import hmac
import os
import re
import urllib.parse
import uuid

from sandbox.msgraph_auth import (
    ASSERTION_TYPE,
    FEDERATED_AUDIENCE,
    GRAPH_APP_ID,
    Caller,
    IssuerKey,
    TokenError,
    federated_token_claims,
    is_certificate_assertion,
    load_certificate,
    mint_access_token,
    missing_parameter,
    read_jwt,
    verify_client_assertion,
    verify_federated_assertion,
)
from sandbox.msgraph_identity import ManagedIdentityEndpoints
from sandbox.server import Response, json_response

TOKEN_ROUTE = re.compile(r"/(?P<tenant>[^/]+)/oauth2/v2\.0/token")
TOKEN_LIFETIME = 3599
GRAPH_PUBLIC_ROOT = "https://graph.microsoft.com"
DEFAULT_APP_ROLES = ("Device.ReadWrite.All",)
DEFAULT_DELEGATED_SCOPES = ("Directory.AccessAsUser.All",)

# The identity provider the sandbox plays for workload identity federation: a Kubernetes cluster's service
# account issuer, and the service account AWX runs its execution pods under. `.test` never resolves.
WORKLOAD_ISSUER = "https://oidc.sandbox.fleetguard.test/"
WORKLOAD_SUBJECT = "system:serviceaccount:awx:awx-ee"


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


class TokenAuthority(ManagedIdentityEndpoints):
    """Mixin of GraphSandbox: the token endpoint (the managed identity endpoints: sandbox/msgraph_identity.py).

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
