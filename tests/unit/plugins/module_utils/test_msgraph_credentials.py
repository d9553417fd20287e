"""Graph credentials against a scripted server: the order auth_source=auto picks them in, and each one's request."""

import os
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from ansible_collections.fleetguard.devices.plugins.module_utils.credential_files import ClientCertificate
from ansible_collections.fleetguard.devices.plugins.module_utils.errors import ApiError, AuthenticationError, InputError
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_credentials import (
    CertificateCredential,
    ClientSecretCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
    select_credential,
)
from ansible_collections.fleetguard.devices.plugins.module_utils.transport import HttpTransport

TENANT = "8f3c1a52-6d1e-4b7a-9c1e-2a5b7d9e0f11"
GRAPH = "https://graph.microsoft.com"
TOKEN_OK = (200, {}, {"token_type": "Bearer", "expires_in": 3599, "access_token": "eyJ.app.token"})


def params(**kwargs):
    base = dict(auth_source="auto", tenant_id=TENANT, client_id="cid", client_secret=None,
                client_certificate_path=None, client_certificate_password=None, federated_token_file=None)
    base.update(kwargs)
    return base


def test_auto_takes_the_secret_before_a_certificate_and_a_federated_token(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("eyJ.federated.sig")
    chosen = select_credential(params(client_secret="s", federated_token_file=str(token_file)), GRAPH,
                               "https://login", environ={})
    assert isinstance(chosen, ClientSecretCredential)
    chosen = select_credential(params(federated_token_file=str(token_file)), GRAPH, "https://login", environ={})
    assert isinstance(chosen, WorkloadIdentityCredential)


def test_auto_uses_a_managed_identity_only_where_its_endpoint_is_injected():
    environ = {"IDENTITY_ENDPOINT": "http://127.0.0.1:1/msi/token", "IDENTITY_HEADER": "h"}
    assert isinstance(select_credential(params(), GRAPH, "https://login", environ=environ), ManagedIdentityCredential)
    with pytest.raises(InputError) as caught:
        select_credential(params(), GRAPH, "https://login", environ={})
    assert "auth_source=managed_identity" in str(caught.value)


def test_a_forced_source_without_its_options_names_what_is_missing():
    with pytest.raises(InputError) as caught:
        select_credential(params(auth_source="certificate", client_secret="s"), GRAPH, "https://login", environ={})
    assert "for auth_source=certificate" in str(caught.value)
    with pytest.raises(InputError) as caught:
        select_credential(params(client_secret="s", client_id=None), GRAPH, "https://login", environ={})
    assert "client_id" in str(caught.value)


def test_a_federated_token_is_the_client_assertion_and_is_read_again_for_each_token(scripted_server, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("eyJ.first.sig\n")
    scripted_server.script = [TOKEN_OK, TOKEN_OK]
    credential = WorkloadIdentityCredential(scripted_server.url, TENANT, "cid", GRAPH + "/.default", str(token_file))
    transport = HttpTransport(timeout=5)
    assert credential.fetch(transport) == ("eyJ.app.token", 3599)
    token_file.write_text("eyJ.rotated.sig")
    credential.fetch(transport)
    forms = [parse_qs(request[3]) for request in scripted_server.requests]
    assert [form["client_assertion"] for form in forms] == [["eyJ.first.sig"], ["eyJ.rotated.sig"]]
    assert forms[0]["client_assertion_type"] == ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]
    assert "client_secret" not in forms[0]


def test_an_unreadable_federated_token_file_is_an_input_error(tmp_path):
    credential = WorkloadIdentityCredential("https://login", TENANT, "cid", GRAPH + "/.default",
                                            str(tmp_path / "missing"))
    with pytest.raises(InputError) as caught:
        credential.fetch(HttpTransport(timeout=5))
    assert "federated_token_file" in str(caught.value)


def test_a_refused_assertion_names_the_kind_of_credential_and_never_the_assertion(scripted_server, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("eyJ.secret-assertion.sig")
    scripted_server.script = [(400, {}, {"error": "invalid_client", "error_codes": [700213],
                                         "error_description": "AADSTS700213: No matching federated identity record"})]
    credential = WorkloadIdentityCredential(scripted_server.url, TENANT, "cid", GRAPH + "/.default", str(token_file))
    with pytest.raises(AuthenticationError) as caught:
        credential.fetch(HttpTransport(timeout=5))
    assert "federated token" in str(caught.value) and "AADSTS700213" in str(caught.value)
    assert "secret-assertion" not in str(caught.value)


def test_the_metadata_service_is_asked_with_the_metadata_header(scripted_server):
    scripted_server.script = [(200, {}, {"access_token": "eyJ.mi", "expires_in": "86399", "resource": GRAPH})]
    credential = ManagedIdentityCredential(GRAPH, client_id="user-assigned",
                                           environ={"AZURE_POD_IDENTITY_AUTHORITY_HOST": scripted_server.url})
    assert credential.fetch(HttpTransport(timeout=5)) == ("eyJ.mi", 86399)
    method, path, headers, dummy = scripted_server.requests[0]
    url = urlsplit(path)
    assert (method, url.path) == ("GET", "/metadata/identity/oauth2/token")
    assert parse_qs(url.query) == {"api-version": ["2018-02-01"], "resource": [GRAPH], "client_id": ["user-assigned"]}
    assert headers["Metadata"] == "true"


def test_the_identity_endpoint_form_sends_its_header_and_reads_expires_on(scripted_server):
    expires_on = str(int(time.time()) + 86399)
    scripted_server.script = [(200, {}, {"access_token": "eyJ.mi", "expires_on": expires_on, "resource": GRAPH})]
    credential = ManagedIdentityCredential(GRAPH, environ={"IDENTITY_ENDPOINT": scripted_server.url + "/msi/token",
                                                           "IDENTITY_HEADER": "opaque-header"})
    token, lifetime = credential.fetch(HttpTransport(timeout=5))
    assert token == "eyJ.mi" and lifetime > 3600
    method, path, headers, dummy = scripted_server.requests[0]
    assert urlsplit(path).path == "/msi/token"
    assert parse_qs(urlsplit(path).query)["api-version"] == ["2019-08-01"]
    assert headers["X-IDENTITY-HEADER"] == "opaque-header" and "Metadata" not in headers


def test_a_refused_managed_identity_is_an_authentication_error_with_its_request_id(scripted_server):
    scripted_server.script = [(400, {"x-ms-request-id": "imds-4711"},
                               {"error": "invalid_request", "error_description": "Identity not found"})]
    credential = ManagedIdentityCredential(GRAPH, environ={"AZURE_POD_IDENTITY_AUTHORITY_HOST": scripted_server.url})
    with pytest.raises(AuthenticationError) as caught:
        credential.fetch(HttpTransport(timeout=5))
    assert "Identity not found" in str(caught.value) and "imds-4711" in str(caught.value)


def test_a_certificate_credential_is_chosen_from_its_path(tmp_path):
    from sandbox.msgraph_auth import make_test_certificate

    pem = make_test_certificate(tmp_path)[0]
    chosen = select_credential(params(client_certificate_path=pem), GRAPH, "https://login", environ={})
    assert isinstance(chosen, CertificateCredential)
    assert chosen.token_url == "https://login/%s/oauth2/v2.0/token" % TENANT


@pytest.mark.parametrize("tenant_id", [
    "../../common", "contoso?p=1", "contoso#x", "%2F..%2Fcommon", "contoso.onmicrosoft.com/../x", "a b.example",
    "contoso..com", "-contoso.com", "contoso", "1.2.3.4", "contoso.onmicrosoft.com\n", "contoso\u0131.com", "",
    "t" * 10000,
], ids=["dot-segments", "query", "fragment", "encoded-slashes", "domain-then-path", "space", "empty-label",
        "label-starting-with-a-hyphen", "one-label", "an-address", "trailing-newline", "non-ascii", "empty",
        "10000-characters"])
def test_a_tenant_id_that_is_no_guid_or_domain_name_is_refused_naming_it_cut_short(tenant_id):
    kinds = [dict(client_secret="s"), dict(federated_token_file="/nonexistent/token")]
    for kind in kinds:
        with pytest.raises(InputError) as caught:
            select_credential(params(tenant_id=tenant_id, **kind), GRAPH, "https://login.microsoftonline.com")
        message = str(caught.value)
        assert "tenant_id" in message
        assert (repr(tenant_id)[:60] in message) if tenant_id else ("tenant_id" in message)
        assert len(message) < 400


@pytest.mark.parametrize("word", ["common", "organizations", "consumers", "Common"])
def test_the_words_for_any_tenant_are_refused_the_client_credentials_flow_needs_one(word):
    with pytest.raises(InputError) as caught:
        select_credential(params(tenant_id=word, client_secret="s"), GRAPH, "https://login.microsoftonline.com")
    assert repr(word) in str(caught.value) and "names no tenant" in str(caught.value)


@pytest.mark.parametrize("tenant_id", [TENANT, TENANT.upper(), "contoso.onmicrosoft.com", "Fleet-Guard.example.co.uk",
                                       "xn--bcher-kva.example"])
def test_a_tenant_id_or_verified_domain_name_is_the_token_urls_path_segment(tenant_id):
    credential = select_credential(params(tenant_id=tenant_id, client_secret="s"), GRAPH, "https://login.example/")
    assert credential.token_url == "https://login.example/%s/oauth2/v2.0/token" % tenant_id


HTML_PAGE = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
CANARY_TOKEN = "eyJ0eXAiOiJKV1QifQ.e30.canarysignature"
TOKEN_CALL = {"method": "POST", "path_regex": r"/oauth2/v2\.0/token$"}


@pytest.mark.parametrize("answer, named", [
    (dict(body=HTML_PAGE, content_type="text/html"), "HTTP 200 with a body that is not JSON"),
    (dict(body=["x"]), "HTTP 200 with a JSON list, not an object"),
    (dict(body={"token_type": "Bearer", "expires_in": 3599}), "it has no access_token"),
    (dict(body={"token_type": "Bearer", "access_token": 5, "expires_in": 3599}), "its access_token is int"),
    (dict(body={"token_type": "Bearer", "access_token": {"a": 1}, "expires_in": 3599}), "its access_token is dict"),
    (dict(body={"token_type": "Bearer", "access_token": CANARY_TOKEN, "expires_in": "soon"}),
     "its expires_in 'soon' is not a number of seconds"),
    (dict(status=400, body=HTML_PAGE, content_type="text/html"), "HTTP 400 with a body that is not JSON"),
], ids=["html-under-200", "a-list", "no-token", "token-a-number", "token-an-object", "expires-in-a-word",
        "html-under-400"])
def test_a_token_answer_of_the_wrong_shape_is_named_not_taken_for_a_refusal(graph_sandbox, answer, named):
    graph_sandbox.faults.add(action="answer", match=TOKEN_CALL, **answer)
    credential = ClientSecretCredential(graph_sandbox.url, graph_sandbox.tenant_id, graph_sandbox.client_id,
                                        GRAPH + "/.default", secret="s")
    with pytest.raises(ApiError) as caught:
        credential.fetch(HttpTransport(timeout=5))
    assert not isinstance(caught.value, AuthenticationError)
    assert named in str(caught.value) and "refused" not in str(caught.value)
    assert caught.value.path.endswith("/oauth2/v2.0/token")
    assert CANARY_TOKEN not in str(caught.value)


@pytest.mark.parametrize("body, named, code", [
    ({"error": {"code": "BadRequest", "message": "Bad tenant"}}, "refused the client secret: Bad tenant", "BadRequest"),
    ({"error": "invalid_client", "error_codes": "7000215", "error_description": "AADSTS7000215: Invalid client secret"},
     "AADSTS7000215: Invalid client secret", "invalid_client"),
    ({"error": "invalid_request", "error_codes": [90002],
      "error_description": "AADSTS90002: Tenant '%s' not found" % ("t" * 10000)}, "(10032 characters)", 90002),
], ids=["graph-shaped-error", "error-codes-not-a-list", "long-description"])
def test_a_refusal_in_any_shape_names_the_authoritys_reason_cut_short(scripted_server, body, named, code):
    scripted_server.script = [(400, {}, body)]
    credential = ClientSecretCredential(scripted_server.url, TENANT, "cid", GRAPH + "/.default", secret="s")
    with pytest.raises(AuthenticationError) as caught:
        credential.fetch(HttpTransport(timeout=5))
    assert named in str(caught.value) and caught.value.api_code == code
    assert len(str(caught.value)) < 1000


def test_a_managed_identity_token_of_the_wrong_shape_is_named(scripted_server):
    scripted_server.script = [(200, {}, {"access_token": {"a": 1}, "expires_in": "86399", "resource": GRAPH})]
    credential = ManagedIdentityCredential(GRAPH, environ={"AZURE_POD_IDENTITY_AUTHORITY_HOST": scripted_server.url})
    with pytest.raises(ApiError) as caught:
        credential.fetch(HttpTransport(timeout=5))
    assert "its access_token is dict, not a string" in str(caught.value)


# Certificates: what the file holds is checked when the credential is built, before any request.


def write_certificate_file(directory, key=None, password=None, parts=("key", "certificate"), certificate_key=None):
    """A PEM file of `parts` in that order: `key` (RSA 2048 unless given, encrypted with `password`) and a
    self-signed certificate of `certificate_key` (the same key unless given). Returns (path, key PEM lines)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ed448, ed25519, rsa
    from cryptography.x509.oid import NameOID

    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    certificate_key = certificate_key or key
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fleetguard-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    # Ed25519 and Ed448 sign without a separate hash.
    algorithm = None if isinstance(certificate_key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)) else hashes.SHA256()
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(certificate_key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1)).sign(certificate_key, algorithm))
    encryption = (serialization.BestAvailableEncryption(password.encode()) if password
                  else serialization.NoEncryption())
    pem = dict(key=key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption),
               certificate=certificate.public_bytes(serialization.Encoding.PEM))
    path = directory / "client.pem"
    path.write_bytes(b"".join(pem[part] for part in parts))
    key_lines = [line for line in pem["key"].decode().splitlines() if line and not line.startswith("-----")]
    return str(path), key_lines


def certificate_refusal(path, password=None):
    with pytest.raises(InputError) as caught:
        select_credential(params(client_certificate_path=path, client_certificate_password=password), GRAPH,
                          "https://login", environ={})
    return str(caught.value)


def non_rsa_key(kind):
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519

    return dict(ec=lambda: ec.generate_private_key(ec.SECP256R1()), ed25519=ed25519.Ed25519PrivateKey.generate,
                ed448=ed448.Ed448PrivateKey.generate, dsa=lambda: dsa.generate_private_key(2048))[kind]()


@pytest.mark.parametrize("kind, named", [
    ("ec", "an EC (secp256r1) key"), ("ed25519", "an Ed25519 key"), ("ed448", "an Ed448 key"), ("dsa", "a DSA key"),
])
def test_a_certificate_whose_key_is_not_rsa_is_refused_naming_the_key_type_never_the_key(tmp_path, kind, named):
    path, key_lines = write_certificate_file(tmp_path, key=non_rsa_key(kind))
    message = certificate_refusal(path)
    assert "client_certificate_path" in message and named in message and "RSA" in message
    assert not any(line in message for line in key_lines)


def test_an_rsa_key_under_2048_bits_is_refused_as_entra_refuses_it(tmp_path):
    from cryptography.hazmat.primitives.asymmetric import rsa

    path, dummy = write_certificate_file(tmp_path, key=rsa.generate_private_key(public_exponent=65537, key_size=1024))
    message = certificate_refusal(path)
    assert "1024-bit RSA key" in message and "2048" in message


def test_an_encrypted_key_needs_its_password_and_a_wrong_one_is_named_never_shown(tmp_path):
    path, key_lines = write_certificate_file(tmp_path, password="right-horse-battery")
    assert "client_certificate_password" in certificate_refusal(path)
    message = certificate_refusal(path, password="wrong-canary-password")
    assert "client_certificate_password" in message and "does not decrypt" in message
    assert "wrong-canary-password" not in message and "right-horse-battery" not in message
    chosen = select_credential(params(client_certificate_path=path, client_certificate_password="right-horse-battery"),
                               GRAPH, "https://login", environ={})
    assert isinstance(chosen, CertificateCredential)


@pytest.mark.parametrize("parts, named", [
    (("certificate",), "holds no private key"),
    (("key",), "holds no certificate"),
    ((), "is empty"),
], ids=["certificate-only", "key-only", "empty"])
def test_a_certificate_file_without_both_parts_says_which_is_missing(tmp_path, parts, named):
    path, key_lines = write_certificate_file(tmp_path, parts=parts)
    message = certificate_refusal(path)
    assert "client_certificate_path" in message and named in message
    assert not any(line in message for line in key_lines)


def test_a_pfx_file_is_refused_with_how_to_convert_it(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography import x509

    path, dummy = write_certificate_file(tmp_path)
    pem = open(path, "rb").read()
    key = serialization.load_pem_private_key(pem, password=None)
    pfx = pkcs12.serialize_key_and_certificates(b"app", key, x509.load_pem_x509_certificate(pem), None,
                                                serialization.NoEncryption())
    (tmp_path / "app.pfx").write_bytes(pfx)
    message = certificate_refusal(str(tmp_path / "app.pfx"))
    assert "PEM" in message and "openssl pkcs12" in message


def test_a_key_that_is_not_the_certificates_key_is_refused(tmp_path):
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path, dummy = write_certificate_file(tmp_path, certificate_key=other)
    assert "is not the private key of the certificate" in certificate_refusal(path)


@pytest.mark.parametrize("make, named", [
    (str, "is not a regular file"),
    (lambda tmp_path: os.mkfifo(str(tmp_path / "fifo")) or str(tmp_path / "fifo"), "is not a regular file"),
    (lambda tmp_path: (tmp_path / "big.pem").write_bytes(b"x" * (2 << 20)) and str(tmp_path / "big.pem"),
     "larger than"),
    (lambda tmp_path: str(tmp_path / "missing.pem"), "No such file"),
], ids=["a-directory", "a-fifo", "2-MiB", "missing"])
def test_a_certificate_path_that_is_no_small_regular_file_is_refused_without_reading_it(tmp_path, make, named):
    path = make(tmp_path)
    message = certificate_refusal(path)
    assert "client_certificate_path" in message and named in message and repr(path) in message


def test_a_certificate_file_reached_through_a_symlink_is_read(tmp_path):
    path, dummy = write_certificate_file(tmp_path)
    os.symlink(path, str(tmp_path / "link.pem"))
    chosen = select_credential(params(client_certificate_path=str(tmp_path / "link.pem")), GRAPH, "https://login",
                               environ={})
    assert isinstance(chosen, CertificateCredential)


# A port nothing listens on: a check that lets a request through fails the test here, not on the network.
CLOSED_PORT = "http://127.0.0.1:9"


# Federated token files: Kubernetes projects them through symlinks (..data/token), so a link is followed.


@pytest.mark.parametrize("content, named", [
    (b"", "is empty"),
    (b"\n  \n", "is empty"),
    (b"\xff\xfe\x00eyJ", "is not text"),
    (b"eyJ" + b"a" * (2 << 20), "larger than"),
], ids=["empty", "blank", "binary", "2-MiB"])
def test_a_federated_token_file_that_holds_no_token_is_named_never_its_content(tmp_path, content, named):
    (tmp_path / "token").write_bytes(content)
    credential = WorkloadIdentityCredential(CLOSED_PORT, TENANT, "cid", GRAPH + "/.default", str(tmp_path / "token"))
    with pytest.raises(InputError) as caught:
        credential.fetch(HttpTransport(timeout=5))
    assert "federated_token_file" in str(caught.value) and named in str(caught.value)
    assert "eyJ" not in str(caught.value) and len(str(caught.value)) < 400


def test_a_federated_token_file_behind_kubernetes_symlinks_is_read(scripted_server, tmp_path):
    (tmp_path / "..2026_12_07").mkdir()
    (tmp_path / "..2026_12_07" / "token").write_text("eyJ.projected.sig")
    os.symlink("..2026_12_07", str(tmp_path / "..data"))
    os.symlink("..data/token", str(tmp_path / "token"))
    scripted_server.script = [TOKEN_OK]
    credential = WorkloadIdentityCredential(scripted_server.url, TENANT, "cid", GRAPH + "/.default",
                                            str(tmp_path / "token"))
    assert credential.fetch(HttpTransport(timeout=5)) == ("eyJ.app.token", 3599)


# Lifetimes: every number a token answer carries is bounded before the token cache computes with it.

HUGE_INTEGER = int("9" * 400)  # JSON allows it; float() of it overflows


@pytest.mark.parametrize("expires_in, shown_as", [
    (float("inf"), "inf"), ("1e999", "'1e999'"), ("NaN", "'NaN'"), (HUGE_INTEGER, "99999999"), (10 ** 12, "1000000000000"),
    (-1, "-1"), (True, "True"),
], ids=["infinity", "1e999-as-text", "nan-as-text", "a-400-digit-integer", "31700-years", "negative", "a-boolean"])
def test_a_client_secret_token_answer_with_an_unusable_expires_in_names_it(scripted_server, expires_in, shown_as):
    scripted_server.script = [(200, {}, {"token_type": "Bearer", "access_token": CANARY_TOKEN, "expires_in": expires_in})]
    credential = ClientSecretCredential(scripted_server.url, TENANT, "cid", GRAPH + "/.default", secret="s")
    with pytest.raises(ApiError) as caught:
        credential.fetch(HttpTransport(timeout=5))
    message = str(caught.value)
    assert "answered HTTP 200, but its expires_in %s" % shown_as in message and "not a number of seconds" in message
    assert CANARY_TOKEN not in message and len(message) < 400


@pytest.mark.parametrize("lifetime_fields, named", [
    ({"expires_in": float("inf")}, "its expires_in inf"),
    ({"expires_in": "1e999"}, "its expires_in '1e999'"),
    ({"expires_in": "NaN"}, "its expires_in 'NaN'"),
    ({"expires_in": True}, "its expires_in True"),
    ({"expires_in": "-5"}, "its expires_in '-5'"),
    ({"expires_in": HUGE_INTEGER}, "its expires_in 9999"),
    ({"expires_on": "1e999"}, "its expires_on '1e999'"),
    ({"expires_on": "NaN"}, "its expires_on 'NaN'"),
    ({"expires_on": "09/14/2017 00:00:00 PM +00:00"}, "its expires_on '09/14/2017"),
    ({"expires_on": str(int(time.time()) + 10 * 365 * 86400)}, "its expires_on '"),
], ids=["expires-in-infinity", "expires-in-1e999", "expires-in-nan", "expires-in-a-boolean", "expires-in-negative",
        "expires-in-400-digits", "expires-on-1e999", "expires-on-nan", "expires-on-a-date", "expires-on-in-10-years"])
def test_a_managed_identity_answer_with_an_unusable_lifetime_names_the_field(scripted_server, lifetime_fields, named):
    scripted_server.script = [(200, {}, dict(access_token=CANARY_TOKEN, resource=GRAPH, **lifetime_fields))]
    credential = ManagedIdentityCredential(GRAPH, environ={"AZURE_POD_IDENTITY_AUTHORITY_HOST": scripted_server.url})
    with pytest.raises(ApiError) as caught:
        credential.fetch(HttpTransport(timeout=5))
    message = str(caught.value)
    assert "the managed identity endpoint answered HTTP 200, but %s" % named in message
    assert not isinstance(caught.value, AuthenticationError) and CANARY_TOKEN not in message and len(message) < 400


def test_a_managed_identity_token_that_expired_a_moment_ago_is_used_once_not_refused(scripted_server):
    # The endpoint's clock may be a little ahead of this host's.
    scripted_server.script = [(200, {}, {"access_token": "eyJ.mi", "expires_on": str(int(time.time()) - 5)})]
    credential = ManagedIdentityCredential(GRAPH, environ={"AZURE_POD_IDENTITY_AUTHORITY_HOST": scripted_server.url})
    assert credential.fetch(HttpTransport(timeout=5)) == ("eyJ.mi", 0)


IDENTITY_CALL = {"method": "GET", "path_regex": r"/msi/token$"}


@pytest.mark.parametrize("answer, named", [
    (dict(body=HTML_PAGE, content_type="text/html"),
     "answered HTTP 200 with a body that is not JSON, which this collection does not understand"),
    (dict(body=["x"]), "answered HTTP 200 with a JSON list, not an object, which this collection does not understand"),
    (dict(body={"resource": GRAPH, "expires_in": "86399"}), "answered HTTP 200, but it has no access_token"),
    (dict(status=404, body=HTML_PAGE, content_type="text/html"), "answered HTTP 404 with a body that is not JSON,"
                                                                 " which this collection does not understand"),
], ids=["html-under-200", "a-list", "no-token", "html-under-404"])
def test_a_managed_identity_answer_of_the_wrong_shape_is_named_not_taken_for_a_refusal(graph_sandbox, answer, named):
    graph_sandbox.faults.add(action="answer", match=IDENTITY_CALL, **answer)
    credential = ManagedIdentityCredential(GRAPH, environ=graph_sandbox.managed_identity_environment())
    with pytest.raises(ApiError) as caught:
        credential.fetch(HttpTransport(timeout=5))
    assert not isinstance(caught.value, AuthenticationError)
    assert named in str(caught.value) and "refused" not in str(caught.value)
    assert caught.value.path == "/msi/token"
    if "does not understand" in named:
        assert "check IDENTITY_ENDPOINT" in str(caught.value)


@pytest.mark.parametrize("environ, named", [
    ({"IDENTITY_ENDPOINT": "not a url", "IDENTITY_HEADER": "h"}, "IDENTITY_ENDPOINT 'not a url'"),
    ({"IDENTITY_ENDPOINT": "file:///etc/passwd", "IDENTITY_HEADER": "h"}, "IDENTITY_ENDPOINT 'file:///etc/passwd'"),
    ({"AZURE_POD_IDENTITY_AUTHORITY_HOST": "127.0.0.1:9"}, "AZURE_POD_IDENTITY_AUTHORITY_HOST '127.0.0.1:9'"),
], ids=["a-word", "a-file-url", "no-scheme"])
def test_an_injected_identity_endpoint_that_is_no_http_url_is_named_before_any_request(environ, named):
    with pytest.raises(InputError) as caught:
        select_credential(params(auth_source="managed_identity"), GRAPH, "https://login", environ=environ)
    assert named + " is not an http(s) URL" in str(caught.value)


def test_an_authority_host_without_a_scheme_is_named_before_any_request():
    with pytest.raises(InputError) as caught:
        select_credential(params(client_secret="s"), GRAPH, "login.microsoftonline.com", environ={})
    assert "authority_host 'login.microsoftonline.com' is not an http(s) URL" in str(caught.value)


# What a hostile file or environment hands the certificate and federated token readers.

@pytest.mark.parametrize("content", [
    b"-----BEGIN PRIVATE KEY-----\nMIIEvgIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n",
    b"GRPC_TRACE=x\x00AZURE_AUTHORITY_HOST=http://127.0.0.1\x00",
    b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0\n.c2ln\n",
], ids=["a-private-key", "an-environment", "a-token-wrapped-onto-lines"])
def test_a_federated_token_file_that_holds_no_jwt_is_refused_before_anything_is_sent(scripted_server, tmp_path, content):
    token_file = tmp_path / "token"
    token_file.write_bytes(content)
    credential = WorkloadIdentityCredential(scripted_server.url, TENANT, "cid", GRAPH + "/.default", str(token_file))
    with pytest.raises(InputError) as caught:
        credential.fetch(HttpTransport(timeout=5))
    assert "does not hold a JWT" in str(caught.value) and "MIIE" not in str(caught.value)
    assert scripted_server.requests == []


def test_a_federated_token_with_a_byte_order_mark_is_sent_without_it(scripted_server, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_bytes(b"\xef\xbb\xbfeyJ.bom.sig\r\n")
    scripted_server.script = [TOKEN_OK]
    credential = WorkloadIdentityCredential(scripted_server.url, TENANT, "cid", GRAPH + "/.default", str(token_file))
    assert credential.fetch(HttpTransport(timeout=5)) == ("eyJ.app.token", 3599)
    form = parse_qs(scripted_server.requests[0][3])
    assert form["client_assertion"] == ["eyJ.bom.sig"]


@pytest.mark.parametrize("path", ["/tmp/client.pem\0x", 3, None], ids=["nul-byte", "number", "none"])
def test_a_certificate_path_that_is_no_path_is_named_not_raised(path):
    with pytest.raises(InputError) as caught:
        ClientCertificate(path)
    assert "client_certificate_path" in str(caught.value) and "is not a file path" in str(caught.value)


def test_a_fifo_is_refused_before_it_is_opened(tmp_path):
    # Opening a FIFO would release a writer blocked on it; it is looked at, and refused, first.
    fifo = tmp_path / "fifo"
    os.mkfifo(str(fifo))
    writer = os.open(str(fifo), os.O_RDWR)  # a reader and a writer at once: the FIFO stays open, nothing blocks
    try:
        assert "is not a regular file" in certificate_refusal(str(fifo))
    finally:
        os.close(writer)


def test_a_key_block_larger_than_any_rsa_key_taken_is_refused_before_it_is_parsed(tmp_path):
    path = tmp_path / "huge.pem"
    body = b"\n".join([b"A" * 64] * 400)  # 25 KB of base64: more than an RSA key of 16384 bits
    path.write_bytes(b"-----BEGIN RSA PRIVATE KEY-----\n" + body + b"\n-----END RSA PRIVATE KEY-----\n"
                     b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    assert "larger than any RSA key of 16384 bits" in certificate_refusal(str(path))


def test_an_openssh_key_is_named_with_how_to_convert_it(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path, dummy = write_certificate_file(tmp_path, key=key)
    openssh = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    certificate = open(path, "rb").read().split(b"-----END PRIVATE KEY-----\n")[1]
    with open(path, "wb") as handle:
        handle.write(openssh + certificate)
    message = certificate_refusal(path)
    assert "OpenSSH private key" in message and "ssh-keygen -p -m PEM" in message


@pytest.mark.parametrize("password", [1234, True, b"hunter2"], ids=["number", "boolean", "bytes"])
def test_a_certificate_password_that_is_not_text_is_named(tmp_path, password):
    path, dummy = write_certificate_file(tmp_path, password="hunter2")
    with pytest.raises(InputError) as caught:
        ClientCertificate(path, password)
    assert "client_certificate_password must be text" in str(caught.value) and "hunter2" not in str(caught.value)


def test_a_chain_certificate_whose_key_cryptography_cannot_read_is_passed_over(tmp_path, monkeypatch):
    from cryptography import x509

    path, dummy = write_certificate_file(tmp_path)
    real_load = x509.load_pem_x509_certificates

    class Unreadable:
        def public_key(self):
            raise ValueError("Curve 1.3.132.0.6 is not supported")

    # An unreadable chain certificate before the app's own (as a secp112r1 certificate is to cryptography).
    monkeypatch.setattr(x509, "load_pem_x509_certificates", lambda pem: [Unreadable()] + real_load(pem))
    assert ClientCertificate(path).thumbprint
