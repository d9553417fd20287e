"""Entra ID (v2.0 endpoint) pieces of the Graph emulator: AADSTS error bodies
(https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes), access tokens
that look like JWTs, verification of certificate client assertions
(https://learn.microsoft.com/en-us/entra/identity-platform/certificate-credentials) and of federated
ones (workload identity federation: a token of an external identity provider that the app trusts
through a federated identity credential,
https://learn.microsoft.com/en-us/entra/workload-id/workload-identity-federation), the key of the
identity provider the sandbox plays, and the error bodies of the managed identity endpoints.
The endpoints built from them are in sandbox/msgraph_authority.py.

`cryptography` is imported only when a certificate is registered, an assertion is checked or a
federated token is minted, so the rest of the sandbox keeps running on the standard library alone.
"""

import base64
import binascii
import datetime
import json
import secrets
import uuid
from dataclasses import dataclass

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLOCK_SKEW = 300  # seconds an assertion's nbf may lie in the future
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
FEDERATED_AUDIENCE = "api://AzureADTokenExchange"  # what Entra expects in a federated assertion's aud
WORKLOAD_IDENTITY_DOCS = "https://learn.microsoft.com/entra/workload-id/workload-identity-federation"


class TokenError(Exception):
    """A token request the authority refuses (AADSTS code, OAuth error, HTTP status)."""

    def __init__(self, status, error, code, message):
        super().__init__(message)
        self.status = status
        self.error = error
        self.code = code
        self.message = message

    def body(self):
        trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
        timestamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
        return {
            "error": self.error,
            "error_description": f"AADSTS{self.code}: {self.message}\r\nTrace ID: {trace_id}\r\n"
            f"Correlation ID: {correlation_id}\r\nTimestamp: {timestamp}",
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": f"https://login.microsoftonline.com/error?code={self.code}",
        }


def missing_parameter(name):
    return TokenError(400, "invalid_request", 900144,
                      f"The request body must contain the following parameter: '{name}'.")


@dataclass(frozen=True)
class Caller:
    """Who an access token speaks for."""

    app: bool  # app-only (client credentials) rather than delegated
    client_id: str
    tenant_id: str
    user_id: str = None  # delegated tokens only
    permissions: frozenset = frozenset()  # app roles, or delegated scopes


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mint_access_token(caller, issued_at, expires_at, user_principal_name=None):
    """A JWT-shaped bearer token. Its signature is random: the emulator looks tokens up, it never verifies them."""
    header = {"typ": "JWT", "alg": "RS256", "kid": "sandbox"}
    claims = {
        "aud": "https://graph.microsoft.com",
        "iss": f"https://sts.windows.net/{caller.tenant_id}/",
        "iat": int(issued_at),
        "nbf": int(issued_at),
        "exp": int(expires_at),
        "appid": caller.client_id,
        "tid": caller.tenant_id,
        "idtyp": "app" if caller.app else "user",
        "uti": b64url(secrets.token_bytes(16)),
        "ver": "1.0",
    }
    if caller.app:
        claims["roles"] = sorted(caller.permissions)
    else:
        claims.update({"oid": caller.user_id, "upn": user_principal_name, "scp": " ".join(sorted(caller.permissions))})
    return f"{_json_part(header)}.{_json_part(claims)}.{b64url(secrets.token_bytes(64))}"


def _json_part(value):
    return b64url(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def load_certificate(cert_pem):
    """A registered certificate: its public key and both thumbprints (base64url, as in x5t / x5t#S256)."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
    except ImportError as exc:
        raise RuntimeError("certificate credentials need the 'cryptography' package") from exc
    data = cert_pem.encode("ascii") if isinstance(cert_pem, str) else cert_pem
    certificate = x509.load_pem_x509_certificate(data)
    return {
        "x5t": b64url(certificate.fingerprint(hashes.SHA1())),
        "x5t#S256": b64url(certificate.fingerprint(hashes.SHA256())),
        "thumbprint": certificate.fingerprint(hashes.SHA1()).hex().upper(),
        "public_key": certificate.public_key(),
    }


def verify_client_assertion(assertion, certificates, audiences, client_id, now):
    """Check a client assertion JWT the way the authority does; raises TokenError when it fails."""
    header, claims, signed, signature = _split_jwt(assertion)
    certificate = _signing_certificate(header, certificates)
    _verify_signature(header.get("alg"), certificate["public_key"], signed, signature)
    if claims.get("aud") not in audiences:
        raise TokenError(401, "invalid_client", 50012,
                         f"Client assertion audience claim '{claims.get('aud')}' does not match the token endpoint "
                         f"'{sorted(audiences)[0]}'.")
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise TokenError(401, "invalid_client", 700021,
                         "Client assertion application identifier doesn't match 'client_id' parameter.")
    _check_lifetime(claims, now)


def _split_jwt(assertion):
    parts = assertion.split(".")
    try:
        if len(parts) != 3:
            raise ValueError("a JWT has three parts")
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        signature = b64url_decode(parts[2])
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise ValueError("header and claims must be objects")
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise TokenError(400, "invalid_request", 50027, f"JWT token is invalid or malformed: {exc}.") from exc
    return header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature


def _signing_certificate(header, certificates):
    for name in ("x5t#S256", "x5t"):
        thumbprint = header.get(name)
        for certificate in certificates:
            if thumbprint and thumbprint.rstrip("=") == certificate[name]:
                return certificate
    used = header.get("x5t#S256") or header.get("x5t")
    raise TokenError(401, "invalid_client", 700027,
                     "The certificate with identifier used to sign the client assertion is not registered on "
                     f"application. [Reason - The key was not found., Thumbprint of key used by client: '{used}']")


def _verify_signature(algorithm, public_key, signed, signature):
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    paddings = {
        "RS256": padding.PKCS1v15(),
        "PS256": padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO),
    }
    if algorithm not in paddings:
        raise TokenError(401, "invalid_client", 5002738,
                         f"Invalid JWT token. '{algorithm}' is not a supported signature algorithm.")
    try:
        public_key.verify(signature, signed, paddings[algorithm], hashes.SHA256())
    except (InvalidSignature, TypeError, ValueError) as exc:
        raise TokenError(401, "invalid_client", 700027, "Client assertion failed signature validation.") from exc


def _iso(moment):
    return datetime.datetime.fromtimestamp(moment, datetime.timezone.utc).strftime("%m/%d/%Y %H:%M:%S")


def make_test_certificate(directory):
    """A throwaway self-signed RSA certificate for tests and demos of certificate credentials.

    Writes `client.pem` (private key, then certificate) into `directory`; returns (path, certificate PEM),
    the certificate being what GraphSandbox.register_certificate() takes.
    """
    import os

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fleetguard-sandbox-client")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    certificate_pem = certificate.public_bytes(serialization.Encoding.PEM)
    path = os.path.join(str(directory), "client.pem")
    with open(path, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()) + certificate_pem)
    return path, certificate_pem.decode()


# Workload identity federation


def read_jwt(assertion):
    """(header, claims, signed bytes, signature) of a compact JWT; TokenError 50027 when malformed."""
    return _split_jwt(assertion)


def is_certificate_assertion(header, claims, client_id):
    """Whether the authority checks an assertion against the app's certificates rather than its federated
    identity credentials: the app signed it itself (iss = client id), or it names a certificate thumbprint
    and no identity provider key (kid)."""
    names_certificate = ("x5t" in header or "x5t#S256" in header) and "kid" not in header
    return claims.get("iss") == client_id or names_certificate


def verify_federated_assertion(assertion, issuer_keys, credentials, now):
    """Check a token of an external identity provider the way Entra does for a federated identity credential;
    returns the credential it matched or raises TokenError.

    `issuer_keys` maps key ids (the token header's kid) to public keys: the keys Entra would find in the issuer's
    JWKS. `credentials` are the app's federated identity credentials ({"name", "issuer", "subject",
    "audiences"}). Issuer and subject are compared exactly (Entra matches case-sensitively since 2024).
    """
    header, claims, signed, signature = _split_jwt(assertion)
    issuer, subject = claims.get("iss"), claims.get("sub")
    trusted = [credential for credential in credentials if credential["issuer"] == issuer]
    if not trusted:
        raise TokenError(401, "invalid_client", 700211,
                         f"No matching federated identity record found for presented assertion issuer '{issuer}'. "
                         "Please check your federated identity credential Subject, Audience and Issuer against the "
                         f"presented assertion. {WORKLOAD_IDENTITY_DOCS}")
    public_key = issuer_keys.get(header.get("kid"))
    if public_key is None:
        raise TokenError(401, "invalid_client", 700027,
                         "Client assertion failed signature validation. [Reason - The key was not found., Key ID of "
                         f"key used by client: '{header.get('kid')}', issuer: '{issuer}']")
    _verify_signature(header.get("alg"), public_key, signed, signature)
    _check_lifetime(claims, now)
    same_subject = [credential for credential in trusted if credential["subject"] == subject]
    if not same_subject:
        if any(str(subject).lower() == credential["subject"].lower() for credential in trusted):
            raise TokenError(401, "invalid_client", 7002138,
                             "No matching federated identity record found for presented assertion subject "
                             f"'{subject}'. The subject matches with case-insensitive comparison, but not with "
                             "case-sensitive comparison. Check your federated identity credential Subject, Audience "
                             "and Issuer against the presented assertion. See documentation at: "
                             f"{WORKLOAD_IDENTITY_DOCS}.")
        raise TokenError(401, "invalid_client", 700213,
                         f"No matching federated identity record found for presented assertion subject '{subject}'. "
                         "Check your federated identity credential Subject, Audience and Issuer against the presented "
                         f"assertion. {WORKLOAD_IDENTITY_DOCS}")
    audiences = claims.get("aud")
    audiences = audiences if isinstance(audiences, list) else [audiences]
    for credential in same_subject:
        if set(audiences) & set(credential["audiences"]):
            return credential
    raise TokenError(400, "invalid_request", 70021,
                     f"No matching federated identity record found for presented assertion. Assertion Issuer: "
                     f"'{issuer}'. Assertion Subject: '{subject}'. Assertion Audience: "
                     f"'{','.join(str(audience) for audience in audiences)}'. {WORKLOAD_IDENTITY_DOCS}")


def _check_lifetime(claims, now):
    expires, not_before = claims.get("exp"), claims.get("nbf", now)
    if not isinstance(expires, (int, float)) or not isinstance(not_before, (int, float)):
        raise TokenError(400, "invalid_request", 50027,
                         "JWT token is invalid or malformed: exp and nbf must be numbers.")
    if expires <= now or not_before > now + CLOCK_SKEW:
        raise TokenError(401, "invalid_client", 700024,
                         f"Client assertion is not within its valid time range. Current time: {_iso(now)}, "
                         f"assertion valid from {_iso(not_before)}, expiry time of assertion {_iso(expires)}.")


class IssuerKey:
    """The signing key of the external identity provider the sandbox plays (a Kubernetes cluster's service
    account token issuer, as an AKS or OpenShift OIDC issuer signs projected tokens): RS256, with a kid."""

    def __init__(self):
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_key = self._key.public_key()
        der = self.public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        digest = hashes.Hash(hashes.SHA256())
        digest.update(der)
        self.kid = b64url(digest.finalize())

    def sign(self, claims):
        """A compact JWT of these claims, signed RS256 (header: alg and kid, as Kubernetes writes them)."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        signing_input = f"{_json_part({'alg': 'RS256', 'kid': self.kid})}.{_json_part(claims)}"
        signature = self._key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64url(signature)}"


def federated_token_claims(issuer, subject, audience, issued_at, lifetime):
    """The claims of a projected service account token (what AZURE_FEDERATED_TOKEN_FILE holds on a node)."""
    claims = {"aud": [audience] if isinstance(audience, str) else list(audience), "iss": issuer, "sub": subject,
              "iat": int(issued_at), "nbf": int(issued_at), "exp": int(issued_at + lifetime),
              "jti": str(uuid.uuid4())}
    parts = subject.split(":")
    if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
        claims["kubernetes.io"] = {"namespace": parts[2], "serviceaccount": {"name": parts[3]}}
    return claims


# Managed identity endpoints: the instance metadata service (IMDS) and the App Service form
# (https://learn.microsoft.com/en-us/entra/identity/managed-identities-azure-resources/how-to-use-vm-token,
# https://learn.microsoft.com/en-us/azure/app-service/overview-managed-identity#rest-endpoint-reference).


class IdentityError(Exception):
    """A managed identity token request refused, with the body the endpoint answers."""

    def __init__(self, status, body):
        super().__init__(body)
        self.status = status
        self.body = body


def imds_error(status, error, description=None):
    """IMDS's OAuth-style body: {"error", "error_description"}."""
    return IdentityError(status, {"error": error, **({"error_description": description} if description else {})})


def app_service_error(status, message):
    """The App Service identity endpoint's body: {"statusCode", "message", "correlationId"}."""
    return IdentityError(status, {"statusCode": status, "message": message, "correlationId": str(uuid.uuid4())})


def choose_identity(system_assigned, user_assigned, selectors, error):
    """The managed identity a token request asks for: a user-assigned one named by one of `selectors`
    ({identity field: value}), else the system-assigned one, else the only user-assigned one.
    `error(message)` builds the endpoint's refusal."""
    given = {field: value for field, value in selectors.items() if value}
    if len(given) > 1:
        raise error("Only one of client_id, object_id/principal_id and msi_res_id/mi_res_id may be given.")
    if given:
        (field, value), = given.items()
        for identity in user_assigned + ([system_assigned] if system_assigned else []):
            if str(identity.get(field) or "").lower() == value.lower():
                return identity
        raise error("Identity not found")
    if system_assigned:
        return system_assigned
    if len(user_assigned) == 1:
        return user_assigned[0]
    if user_assigned:
        raise error("Multiple user assigned identities exist, please specify the clientId / resourceId of the "
                    "identity in the token request")
    raise error("Identity not found")
