"""Entra ID (v2.0 endpoint) pieces of the Graph emulator: AADSTS error bodies
(https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes), access tokens
that look like JWTs, and verification of certificate client assertions
(https://learn.microsoft.com/en-us/entra/identity-platform/certificate-credentials).
The token endpoint built from them is sandbox/msgraph_authority.py.

`cryptography` is imported only when a certificate is registered or an assertion is checked,
so the rest of the sandbox keeps running on the standard library alone.
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
    expires, not_before = claims.get("exp"), claims.get("nbf", now)
    if not isinstance(expires, (int, float)) or not isinstance(not_before, (int, float)):
        raise TokenError(400, "invalid_request", 50027, "JWT token is invalid or malformed: exp and nbf must be numbers.")
    if expires <= now or not_before > now + CLOCK_SKEW:
        raise TokenError(401, "invalid_client", 700024,
                         f"Client assertion is not within its valid time range. Current time: {_iso(now)}, "
                         f"assertion valid from {_iso(not_before)}, expiry time of assertion {_iso(expires)}.")


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
