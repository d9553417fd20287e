# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""Where a Microsoft Graph token comes from: the national cloud, and one credential per way to sign in.

Every credential has `fetch(transport) -> (access token, lifetime in seconds)`; the client reuses the
token for its lifetime and fetches a new one on a 401. The order `auth_source: auto` tries them in is
written in CREDENTIAL_ORDER, and in the `auth_source` option's documentation.

- client secret and certificate: the OAuth2 client-credentials flow
  (https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow);
  the certificate signs a client assertion with `cryptography` (RS256, `x5t` and `x5t#S256` headers:
  https://learn.microsoft.com/en-us/entra/identity-platform/certificate-credentials); how it and the other
  credential files are read and checked is in credential_files.py.
- workload identity federation: the same flow, with the token a Kubernetes / OpenShift node projects into
  AZURE_FEDERATED_TOKEN_FILE as the client assertion, read anew for every token (it rotates).
- managed identity: the App Service form (IDENTITY_ENDPOINT + IDENTITY_HEADER) or the instance metadata
  service (IMDS, whose host AZURE_POD_IDENTITY_AUTHORITY_HOST overrides), as azure-identity reads them
  (https://learn.microsoft.com/en-us/entra/identity/managed-identities-azure-resources/how-to-use-vm-token).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import abc
import os
from urllib.parse import urlparse

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import (
    ApiError,
    AuthenticationError,
    InputError,
    TransientError,
    body_kind,
)
from ansible_collections.fleetguard.devices.plugins.module_utils.credential_files import (
    ClientCertificate,
    federated_token,
)
from ansible_collections.fleetguard.devices.plugins.module_utils.entra_authority import (
    check_tenant_id,
    error_code,
    managed_identity_lifetime,
    refusal_reason,
    text_field,
)
from ansible_collections.fleetguard.devices.plugins.module_utils.tokens import token_answer_problem
from ansible_collections.fleetguard.devices.plugins.module_utils.transport import check_endpoint

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
IMDS_HOST = "http://169.254.169.254"
IMDS_PATH = "/metadata/identity/oauth2/token"
AUTH_SOURCES = ("auto", "access_token", "client_secret", "certificate", "workload_identity", "managed_identity")


class AuthorityCredential(metaclass=abc.ABCMeta):
    """The client-credentials flow at the tenant's token endpoint; subclasses say how the app proves itself."""

    KIND = None

    def __init__(self, authority_host, tenant_id, client_id, scope):
        self.token_url = "%s/%s/oauth2/v2.0/token" % (check_endpoint(authority_host, "authority_host").rstrip("/"),
                                                      check_tenant_id(tenant_id))
        self.client_id = client_id
        self.scope = scope

    @abc.abstractmethod
    def proof(self):
        """The form fields that prove the app's identity."""

    def fetch(self, transport):
        form = dict(client_id=self.client_id, scope=self.scope, grant_type="client_credentials")
        form.update(self.proof())
        response = transport.request("POST", self.token_url, data=form, idempotent=True)
        body = response.json if isinstance(response.json, dict) else {}
        details = dict(method="POST", path=urlparse(self.token_url).path, status=response.status,
                       api_code=error_code(body), request_id=text_field(body, "trace_id", "correlation_id"))
        if response.status == 429 or response.status >= 500:
            raise TransientError("could not obtain a Graph token: %s" % refusal_reason(body, response.status),
                                 **details)
        if response.status >= 400 and body.get("error") not in (None, ""):
            raise AuthenticationError("the token authority refused the %s: %s" % (
                self.KIND, refusal_reason(body, response.status)), **details)
        if response.status != 200 or response.json is None or not isinstance(response.json, dict):
            # An HTML page from a proxy, an answer of another service: no verdict on the credential.
            raise ApiError("the token authority answered HTTP %s with %s, which this collection does not understand:"
                           " check authority_host" % (response.status,
                                                      body_kind(response.json, "neither a token nor an OAuth2 error")),
                           **details)
        token, lifetime = body.get("access_token"), body.get("expires_in")
        problem = token_answer_problem(token, lifetime, "access_token", "expires_in")
        if problem:
            raise ApiError("the token authority answered HTTP 200, but %s" % problem, **details)
        return token, lifetime


class ClientSecretCredential(AuthorityCredential):
    KIND = "client secret"

    def __init__(self, authority_host, tenant_id, client_id, scope, secret):
        super(ClientSecretCredential, self).__init__(authority_host, tenant_id, client_id, scope)
        self._secret = secret

    def proof(self):
        return dict(client_secret=self._secret)


class CertificateCredential(AuthorityCredential):
    KIND = "client certificate"

    def __init__(self, authority_host, tenant_id, client_id, scope, certificate):
        super(CertificateCredential, self).__init__(authority_host, tenant_id, client_id, scope)
        self.certificate = certificate

    def proof(self):
        return dict(client_assertion_type=CLIENT_ASSERTION_TYPE,
                    client_assertion=self.certificate.assertion(self.client_id, self.token_url))


class WorkloadIdentityCredential(AuthorityCredential):
    KIND = "federated token"

    def __init__(self, authority_host, tenant_id, client_id, scope, token_file):
        super(WorkloadIdentityCredential, self).__init__(authority_host, tenant_id, client_id, scope)
        self.token_file = token_file

    def proof(self):
        # Read anew for every token: the projected token rotates.
        return dict(client_assertion_type=CLIENT_ASSERTION_TYPE, client_assertion=federated_token(self.token_file))


class ManagedIdentityCredential:
    """A token for the identity Azure gives the machine (system-assigned, or user-assigned by client id)."""

    def __init__(self, resource, client_id=None, environ=None):
        environ = os.environ if environ is None else environ
        self.resource = resource
        self.client_id = client_id
        endpoint, header = environ.get("IDENTITY_ENDPOINT"), environ.get("IDENTITY_HEADER")
        if endpoint and header:
            # App Service, Container Apps, Azure Arc style endpoint.
            self.url_source = "IDENTITY_ENDPOINT"
            self.url, self.api_version = check_endpoint(endpoint, self.url_source), "2019-08-01"
            self._headers = {"X-IDENTITY-HEADER": header}
        else:
            host = environ.get("AZURE_POD_IDENTITY_AUTHORITY_HOST") or IMDS_HOST
            self.url_source = "AZURE_POD_IDENTITY_AUTHORITY_HOST" if host != IMDS_HOST else "the instance metadata service"
            self.url, self.api_version = check_endpoint(host, self.url_source).rstrip("/") + IMDS_PATH, "2018-02-01"
            self._headers = {"Metadata": "true"}

    def fetch(self, transport):
        params = {"api-version": self.api_version, "resource": self.resource}
        if self.client_id:
            params["client_id"] = self.client_id
        response = transport.request("GET", self.url, params=params, headers=self._headers)
        body = response.json if isinstance(response.json, dict) else {}
        # IMDS names its request in x-ms-request-id; the App Service form in the body's correlationId.
        details = dict(method="GET", path=urlparse(self.url).path, status=response.status,
                       api_code=text_field(body, "error"),
                       request_id=response.headers.get("x-ms-request-id") or text_field(body, "correlationId"))
        reason = text_field(body, "error_description", "message", "error")
        if response.status == 429 or response.status >= 500:
            raise TransientError("could not obtain a managed identity token: %s" % (
                reason or "HTTP %s" % response.status), **details)
        if response.status >= 400 and reason:
            raise AuthenticationError("the managed identity endpoint refused: %s" % reason.splitlines()[0], **details)
        if response.status != 200 or not isinstance(response.json, dict):
            # An HTML page from a proxy, an answer of another service: no verdict on the identity.
            answer = body_kind(response.json, "neither a token nor an error")
            raise ApiError("the managed identity endpoint answered HTTP %s with %s, which this collection does not"
                           " understand: check %s" % (response.status, answer, self.url_source), **details)
        problem = token_answer_problem(body.get("access_token"), None, "access_token")
        try:
            lifetime = managed_identity_lifetime(body)
        except ValueError as exc:
            problem = problem or str(exc)
        if problem:
            raise ApiError("the managed identity endpoint answered HTTP 200, but %s" % problem, **details)
        return body["access_token"], lifetime


# auth_source=auto tries these in order; the first whose options are all given is used.
CREDENTIAL_ORDER = ("client_secret", "certificate", "workload_identity", "managed_identity")


def select_credential(params, graph_root, authority_host, environ=None):
    """The credential the options ask for, or an InputError naming every way to supply one.

    A ready access_token is handled by the client itself (it cannot be renewed), so it is not chosen here.
    """
    environ = os.environ if environ is None else environ
    source = params.get("auth_source") or "auto"
    scope = "%s/.default" % graph_root
    tenant_id, client_id = params.get("tenant_id"), params.get("client_id")

    def tenant_app(kind):
        missing = [name for name, value in (("tenant_id", tenant_id), ("client_id", client_id)) if not value]
        if missing:
            raise InputError("%s needs %s (or AZURE_TENANT_ID and AZURE_CLIENT_ID)" % (kind, " and ".join(missing)))
        return authority_host, tenant_id, client_id, scope

    available = dict(
        client_secret=bool(params.get("client_secret")),
        certificate=bool(params.get("client_certificate_path")),
        workload_identity=bool(params.get("federated_token_file")),
        # Without IDENTITY_ENDPOINT, managed identity means the metadata service: only when asked for,
        # since off Azure it does not answer.
        managed_identity=bool(environ.get("IDENTITY_ENDPOINT") and environ.get("IDENTITY_HEADER")),
    )
    if source == "auto":
        source = next((name for name in CREDENTIAL_ORDER if available[name]), None)
    if source == "client_secret" and available["client_secret"]:
        return ClientSecretCredential(*tenant_app("client_secret"), secret=params["client_secret"])
    if source == "certificate" and available["certificate"]:
        certificate = ClientCertificate(params["client_certificate_path"], params.get("client_certificate_password"))
        return CertificateCredential(*tenant_app("client_certificate_path"), certificate=certificate)
    if source == "workload_identity" and available["workload_identity"]:
        return WorkloadIdentityCredential(*tenant_app("federated_token_file"), token_file=params["federated_token_file"])
    if source == "managed_identity":
        return ManagedIdentityCredential(graph_root, client_id=client_id, environ=environ)
    asked = "" if params.get("auth_source") in (None, "auto") else " for auth_source=%s" % params["auth_source"]
    raise InputError(
        "Microsoft Graph credentials are missing%s. Set tenant_id, client_id and client_secret (or AZURE_TENANT_ID,"
        " AZURE_CLIENT_ID and AZURE_CLIENT_SECRET / AZURE_SECRET, as AWX's Azure credential injects them), or"
        " client_certificate_path, or federated_token_file (AZURE_FEDERATED_TOKEN_FILE, workload identity), or"
        " auth_source=managed_identity, or access_token (MSGRAPH_ACCESS_TOKEN)" % asked)
