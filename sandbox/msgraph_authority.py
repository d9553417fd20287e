"""The Entra ID token endpoint of the Graph emulator: `POST /{tenant}/oauth2/v2.0/token` with the
client-credentials grant, a client secret or a certificate client assertion
(https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow,
https://learn.microsoft.com/en-us/entra/identity-platform/certificate-credentials), and the Python
API tests use to mint tokens and register certificates directly.

The pieces it is built from (AADSTS error bodies, JWT-shaped tokens, assertion checks) are in
sandbox/msgraph_auth.py.
"""

import hmac
import re
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
from sandbox.server import Response

TOKEN_ROUTE = re.compile(r"/(?P<tenant>[^/]+)/oauth2/v2\.0/token")
TOKEN_LIFETIME = 3599
GRAPH_PUBLIC_ROOT = "https://graph.microsoft.com"
DEFAULT_APP_ROLES = ("Device.ReadWrite.All",)
DEFAULT_DELEGATED_SCOPES = ("Directory.AccessAsUser.All",)


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
    """Mixin of GraphSandbox: the token endpoint.

    Uses from the composed class: `tenant_id`, `tenant_domain`, `client_id`, `client_secret`,
    `app_roles`, `_certificates`, `users`, `_find_user`, and the Emulator's `lock`, `clock`,
    `tokens` and `url`.
    """

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
