"""Graph credentials against a scripted server: the order auth_source=auto picks them in, and each one's request."""

from urllib.parse import parse_qs, urlsplit

import pytest

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
    token_file.write_text("eyJ.federated")
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
    token_file.write_text("eyJ.first\n")
    scripted_server.script = [TOKEN_OK, TOKEN_OK]
    credential = WorkloadIdentityCredential(scripted_server.url, TENANT, "cid", GRAPH + "/.default", str(token_file))
    transport = HttpTransport(timeout=5)
    assert credential.fetch(transport) == ("eyJ.app.token", 3599)
    token_file.write_text("eyJ.rotated")
    credential.fetch(transport)
    forms = [parse_qs(request[3]) for request in scripted_server.requests]
    assert [form["client_assertion"] for form in forms] == [["eyJ.first"], ["eyJ.rotated"]]
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
    token_file.write_text("eyJ.secret-assertion")
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
    scripted_server.script = [(200, {}, {"access_token": "eyJ.mi", "expires_on": "4102444800", "resource": GRAPH})]
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
