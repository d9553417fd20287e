# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""Credential material read from files: the client certificate (a PEM private key and its certificate, which
sign client assertions) and the bytes of any small credential file (the federated token file too).

Entra takes client assertions signed RS256 or PS256 with an RSA key
(https://learn.microsoft.com/en-us/entra/identity-platform/certificate-credentials): any other key, or a file
that cannot be one, is refused here, naming what the file holds and never its material.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import os
import re
import stat
import time
import uuid

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import InputError, shown_text

# Largest credential file read: a PEM key with its certificate chain, or a projected token, is a few KiB.
MAX_CREDENTIAL_FILE = 1 << 20
# Entra refuses smaller RSA keys ("AADSTS700027: RSA key size 1024 is less than the minimum required 2048 bits").
MIN_RSA_KEY_BITS = 2048
# Largest RSA key loaded: Entra names no maximum, and a larger key costs minutes of CPU to load or check.
MAX_RSA_KEY_BITS = 16384
# A PEM private key block larger than this holds no RSA key of MAX_RSA_KEY_BITS (about 12.7 KB as PKCS#8 PEM):
# it is refused before cryptography spends minutes on it.
MAX_KEY_BLOCK = 16 << 10
PRIVATE_KEY_BLOCK = re.compile(br"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----(.*?)-----END \1PRIVATE KEY-----", re.S)
PFX_HINT = "a PFX / PKCS#12 file must be converted first: openssl pkcs12 -in app.pfx -nodes -out app.pem"
OPENSSH_HINT = "convert it to PEM first: ssh-keygen -p -m PEM -f <copy of the key>"
# A JWT in compact form: three base64url parts joined by dots (https://www.rfc-editor.org/rfc/rfc7519#section-3).
JWT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\Z")


def _b64url(raw):
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def shown_path(path):
    """A file's path as a message names it: quoted, and whole unless absurdly long (the operator must find it)."""
    return shown_text(repr(path))


def read_credential_file(path, option):
    """The bytes of the small regular file an option names. A symlink is followed (Kubernetes projects tokens
    through ..data links). A directory, a FIFO, a socket or a device is refused before it is opened (opening a
    FIFO or a device acts on it); the file is then opened without blocking, and what was opened must be the file
    looked at, so no path swapped in between can block or be read."""
    if not isinstance(path, str) or "\0" in path:
        raise InputError("%s %s is not a file path" % (option, shown_path(path)))
    try:
        seen = os.stat(path)
        if not stat.S_ISREG(seen.st_mode):
            raise InputError("%s %s is not a regular file" % (option, shown_path(path)))
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        try:
            opened = os.fstat(descriptor)
            same = (opened.st_dev, opened.st_ino) == (seen.st_dev, seen.st_ino) and stat.S_ISREG(opened.st_mode)
            content = _read_at_most(descriptor, MAX_CREDENTIAL_FILE + 1) if same else None
        finally:
            os.close(descriptor)
    except (IOError, OSError) as exc:
        raise InputError("cannot read %s %s: %s" % (option, shown_path(path), exc.strerror))
    if content is None:
        raise InputError("%s %s was replaced while it was read" % (option, shown_path(path)))
    if len(content) > MAX_CREDENTIAL_FILE:
        raise InputError("%s %s is larger than %d bytes" % (option, shown_path(path), MAX_CREDENTIAL_FILE))
    return content


def _read_at_most(descriptor, size):
    chunks, left = [], size
    while left > 0:
        chunk = os.read(descriptor, left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def federated_token(path):
    """The token a federated_token_file holds, checked to be a JWT before it is sent anywhere: any other file
    (a private key, /proc/self/environ) would otherwise be posted to the token endpoint. The content is never
    shown: it may be a working credential."""
    content = read_credential_file(path, "federated_token_file")
    try:
        # A byte-order mark or a line break at either end is the file's, not the token's.
        token = content.decode("ascii" if not content.startswith(b"\xef\xbb\xbf") else "utf-8-sig").strip()
    except UnicodeDecodeError:
        raise InputError("federated_token_file %s is not text (a JWT)" % shown_path(path))
    if not token:
        raise InputError("federated_token_file %s is empty" % shown_path(path))
    if not JWT.match(token):
        raise InputError("federated_token_file %s does not hold a JWT (three base64url parts joined by dots, on one"
                         " line); nothing was sent" % shown_path(path))
    return token


def key_kind(key):
    """The private key's type as a message names it ("an EC (secp256r1) key"), never its material."""
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519

    if isinstance(key, rsa.RSAPrivateKey):
        return "a %d-bit RSA key" % key.key_size
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return "an EC (%s) key" % key.curve.name
    names = ((ed25519.Ed25519PrivateKey, "an Ed25519 key"), (ed448.Ed448PrivateKey, "an Ed448 key"),
             (dsa.DSAPrivateKey, "a DSA key"), (x25519.X25519PrivateKey, "an X25519 key"),
             (x448.X448PrivateKey, "an X448 key"))
    return next((name for kind, name in names if isinstance(key, kind)), "a %s" % type(key).__name__)


def _load_private_key(pem, password):
    """cryptography's PEM loader. RSA keys are not checked for consistency while loading: the check costs minutes
    for large keys, and a key that does not match its certificate is refused by _certificate_of_key anyway."""
    from cryptography.hazmat.primitives import serialization

    try:
        return serialization.load_pem_private_key(pem, password=password, unsafe_skip_rsa_key_validation=True)
    except TypeError as exc:
        if "unsafe_skip_rsa_key_validation" not in str(exc):
            raise
        # cryptography before 39 has no such argument.
        return serialization.load_pem_private_key(pem, password=password)


class ClientCertificate:
    """A PEM private key and certificate that sign client assertions (RS256, with x5t and x5t#S256)."""

    def __init__(self, pem_path, password=None):
        try:
            # Imported here: only certificate credentials need it (it ships with ansible-core).
            from cryptography.hazmat.primitives import hashes
        except ImportError:
            raise InputError("certificate authentication needs the Python library cryptography")
        self.path = pem_path
        pem = read_credential_file(pem_path, "client_certificate_path")
        self._check_parts(pem)
        self.key = self._private_key(pem, password)
        self._check_signing_key()
        certificate = self._certificate_of_key(pem)
        self.x5t = _b64url(certificate.fingerprint(hashes.SHA1()))
        self.x5t_s256 = _b64url(certificate.fingerprint(hashes.SHA256()))
        self.thumbprint = certificate.fingerprint(hashes.SHA1()).hex().upper()

    def _refuse(self, problem):
        return InputError("client_certificate_path %s %s" % (shown_path(self.path), problem))

    def _check_parts(self, pem):
        """Say which part is missing before cryptography says "could not deserialize"."""
        if not pem.strip():
            raise self._refuse("is empty")
        if b"-----BEGIN " not in pem:
            raise self._refuse("is not PEM; it must hold the app's private key, then its certificate (%s)" % PFX_HINT)
        if b"-----BEGIN OPENSSH PRIVATE KEY-----" in pem:
            raise self._refuse("holds an OpenSSH private key; %s" % OPENSSH_HINT)
        if any(len(block.group(2)) > MAX_KEY_BLOCK for block in PRIVATE_KEY_BLOCK.finditer(pem)):
            raise self._refuse("holds a private key larger than any RSA key of %d bits" % MAX_RSA_KEY_BITS)
        if b"PRIVATE KEY-----" not in pem:
            raise self._refuse("holds no private key; it must hold the app's private key, then its certificate")
        if b"-----BEGIN CERTIFICATE-----" not in pem:
            raise self._refuse("holds no certificate; it must hold the app's private key, then its certificate")

    def _private_key(self, pem, password):
        if password is not None and not isinstance(password, str):
            raise InputError("client_certificate_password must be text, not %s (quote it in YAML)"
                             % type(password).__name__)
        try:
            return _load_private_key(pem, password.encode("utf-8") if password else None)
        except TypeError:
            if password is None:
                raise self._refuse("holds an encrypted private key: set client_certificate_password")
            if not password:
                raise self._refuse("holds a private key encrypted with an empty password, which cryptography cannot"
                                   " decrypt: encrypt it with a password, or not at all")
            # A password for a key that is not encrypted (a credential type that always injects one) is not needed.
            return _load_private_key(pem, None)
        except ValueError as exc:
            # cryptography's message says what it could not do (a wrong password, an unknown cipher), never the key.
            reason = str(exc).partition(". ")[0]
            if password:
                raise self._refuse("holds a private key that client_certificate_password does not decrypt (%s)" % reason)
            raise self._refuse("holds a private key this collection cannot read (%s)" % reason)

    def _check_signing_key(self):
        """Entra takes client assertions signed RS256 or PS256, that is with an RSA key of 2048 bits or more
        (https://learn.microsoft.com/en-us/entra/identity-platform/certificate-credentials; azure-identity's
        CertificateCredential likewise "requires an RSA private key because it uses RS256 for signing")."""
        from cryptography.hazmat.primitives.asymmetric import rsa

        if not isinstance(self.key, rsa.RSAPrivateKey):
            raise self._refuse("holds %s; Entra ID needs an RSA key (2048 bits or more) to sign the client assertion"
                               " (RS256)" % key_kind(self.key))
        if self.key.key_size < MIN_RSA_KEY_BITS:
            raise self._refuse("holds %s; Entra ID refuses RSA keys under %d bits"
                               % (key_kind(self.key), MIN_RSA_KEY_BITS))
        if self.key.key_size > MAX_RSA_KEY_BITS:
            raise self._refuse("holds %s; keys over %d bits are refused (they cost minutes to use)"
                               % (key_kind(self.key), MAX_RSA_KEY_BITS))

    def _certificate_of_key(self, pem):
        """The certificate of the private key (the file may hold a chain in any order): Entra finds the app's
        key by this certificate's thumbprint."""
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        try:
            load_all = getattr(x509, "load_pem_x509_certificates", None)
            certificates = load_all(pem) if load_all else [x509.load_pem_x509_certificate(pem)]
        except ValueError:
            raise self._refuse("holds a certificate this collection cannot read")
        spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        wanted = self.key.public_key().public_bytes(*spki)
        for certificate in certificates:
            try:
                public_bytes = certificate.public_key().public_bytes(*spki)
            except Exception:  # pylint: disable=broad-except
                # A chain certificate whose key cryptography cannot read (an unsupported curve) is not the app's.
                continue
            if public_bytes == wanted:
                return certificate
        raise self._refuse("holds a key that is not the private key of the certificate it holds")

    def assertion(self, client_id, audience, now=None):
        """A signed JWT (RS256) that proves the app holds the certificate's key."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        now = int(now if now is not None else time.time())
        header = {"alg": "RS256", "typ": "JWT", "x5t": self.x5t, "x5t#S256": self.x5t_s256}
        claims = dict(aud=audience, iss=client_id, sub=client_id, jti=str(uuid.uuid4()), nbf=now, iat=now,
                      exp=now + 600)
        signing_input = "%s.%s" % (_b64url(json.dumps(header, separators=(",", ":")).encode()),
                                   _b64url(json.dumps(claims, separators=(",", ":")).encode()))
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return "%s.%s" % (signing_input, _b64url(signature))
