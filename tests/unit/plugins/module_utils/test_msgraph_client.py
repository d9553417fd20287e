"""GraphClient against a scripted server: tokens, error bodies, paging and $batch handling."""

import base64
import json
from urllib.parse import parse_qs

import pytest

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import (
    ApiError,
    AuthenticationError,
    InputError,
    NotFoundError,
)
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_client import GraphClient, token_claims
from ansible_collections.fleetguard.devices.plugins.module_utils.entra_authority import CLOUDS
from ansible_collections.fleetguard.devices.plugins.module_utils.credential_files import ClientCertificate
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_credentials import (
    CertificateCredential,
    ClientSecretCredential,
)
from ansible_collections.fleetguard.devices.plugins.module_utils.transport import HttpTransport
from ansible_collections.fleetguard.devices.tests.unit.plugins.module_utils.fake_time import FakeTime

TENANT = "8f3c1a52-6d1e-4b7a-9c1e-2a5b7d9e0f11"
TOKEN_OK = (200, {}, {"token_type": "Bearer", "expires_in": 3599, "access_token": "eyJ.app.token"})


def make_client(server, **kwargs):
    time = FakeTime()
    sleeps = time.sleeps
    transport = HttpTransport(server.url, timeout=5, max_retries=3, backoff_base=0.001, sleep=time.sleep,
                              clock=time.clock, wall_clock=time.clock)
    scope = server.url + "/.default"
    certificate = kwargs.pop("certificate", None)
    if certificate is not None:
        credential = CertificateCredential(server.url, TENANT, "cid", scope, certificate=certificate)
    else:
        credential = ClientSecretCredential(server.url, TENANT, "cid", scope, secret="s3cret-value")
    client = GraphClient(transport, server.url, credential=credential, **kwargs)
    return client, sleeps


def batch_answer(*responses):
    return (200, {}, {"responses": [dict(id=i, status=s, headers=h, body=b) for i, s, h, b in responses]})


def test_missing_credentials_name_every_way_to_supply_them():
    params = dict(cloud=None, graph_endpoint=None, authority_host=None, tenant_id=TENANT, timeout=5,
                  validate_certs=True, max_retries=1, api_version="v1.0")
    with pytest.raises(InputError) as caught:
        GraphClient.from_params(params)
    for name in ("client_id", "AZURE_CLIENT_SECRET", "AZURE_SECRET", "client_certificate_path", "MSGRAPH_ACCESS_TOKEN",
                 "federated_token_file", "AZURE_FEDERATED_TOKEN_FILE", "managed_identity"):
        assert name in str(caught.value)


def test_the_client_credentials_request_is_form_encoded_with_the_clouds_scope(scripted_server):
    scripted_server.script = [TOKEN_OK, (200, {}, {"id": "d1"})]
    client, dummy = make_client(scripted_server)
    client.request("GET", "/devices/d1")
    method, path, headers, body = scripted_server.requests[0]
    assert (method, path) == ("POST", "/%s/oauth2/v2.0/token" % TENANT)
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = parse_qs(body)
    assert form == {"client_id": ["cid"], "scope": [scripted_server.url + "/.default"],
                    "grant_type": ["client_credentials"], "client_secret": ["s3cret-value"]}
    assert scripted_server.requests[1][2]["Authorization"] == "Bearer eyJ.app.token"


def test_a_refused_secret_is_an_authentication_error_without_the_secret(scripted_server):
    scripted_server.script = [(401, {}, {
        "error": "invalid_client", "error_codes": [7000215], "trace_id": "trace-1",
        "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: trace-1"})]
    client, dummy = make_client(scripted_server)
    with pytest.raises(AuthenticationError) as caught:
        client.request("GET", "/devices/d1")
    assert "AADSTS7000215: Invalid client secret provided." in str(caught.value)
    assert caught.value.api_code == 7000215 and caught.value.request_id == "trace-1"
    assert "s3cret-value" not in str(caught.value) and "s3cret-value" not in repr(caught.value.to_dict())


def test_a_401_gets_one_new_token_and_the_call_repeated(scripted_server):
    expired = (401, {"request-id": "r1"}, {"error": {"code": "InvalidAuthenticationToken",
                                                     "message": "Lifetime validation failed, the token is expired."}})
    scripted_server.script = [TOKEN_OK, expired, TOKEN_OK, (200, {}, {"id": "d1"})]
    client, dummy = make_client(scripted_server)
    assert client.request("GET", "/devices/d1").json == {"id": "d1"}
    assert [r[0] for r in scripted_server.requests] == ["POST", "GET", "POST", "GET"]


def test_a_static_token_that_expires_says_it_cannot_be_renewed(scripted_server):
    scripted_server.script = [(401, {}, {"error": {"code": "InvalidAuthenticationToken", "message": "expired"}})]
    client, dummy = make_client(scripted_server, access_token="eyJ.given.token")
    with pytest.raises(AuthenticationError) as caught:
        client.request("GET", "/devices/d1")
    assert "cannot be renewed" in str(caught.value)
    assert len(scripted_server.requests) == 1


def test_graph_errors_carry_code_message_and_request_id(scripted_server):
    scripted_server.script = [TOKEN_OK, (404, {"request-id": "hdr"}, {"error": {
        "code": "Request_ResourceNotFound", "message": "Resource 'x' does not exist",
        "innerError": {"date": "2026-01-01T00:00:00", "request-id": "body-id"}}})]
    client, dummy = make_client(scripted_server)
    with pytest.raises(NotFoundError) as caught:
        client.request("GET", "/devices/x?$select=id")
    error = caught.value
    assert (error.status, error.api_code, error.request_id, error.path) == (
        404, "Request_ResourceNotFound", "body-id", "/devices/x")


def test_paging_follows_next_links_and_resends_consistency_level(scripted_server):
    next_link = scripted_server.url + "/v1.0/devices?$skiptoken=abc"
    scripted_server.script = [TOKEN_OK,
                              (200, {}, {"@odata.count": 3, "value": [{"id": "1"}, {"id": "2"}],
                                         "@odata.nextLink": next_link}),
                              (200, {}, {"value": [{"id": "3"}]})]
    client, dummy = make_client(scripted_server)
    pages = []
    items = list(client.iter_pages("/devices?$count=true", headers={"ConsistencyLevel": "eventual"},
                                   on_page=pages.append))
    assert [i["id"] for i in items] == ["1", "2", "3"]
    assert scripted_server.requests[2][1] == "/v1.0/devices?$skiptoken=abc"
    assert scripted_server.requests[2][2]["ConsistencyLevel"] == "eventual"
    assert pages[0]["@odata.count"] == 3


def test_batches_hold_at_most_twenty_requests(scripted_server, monkeypatch):
    from ansible_collections.fleetguard.devices.plugins.module_utils import msgraph_client

    # The scripted server answers in arrival order: one batch in flight at a time here.
    monkeypatch.setattr(msgraph_client, "BATCHES_IN_FLIGHT", 1)
    requests = [dict(id=str(n), method="GET", url="/devices/%d" % n) for n in range(45)]
    scripted_server.script = [TOKEN_OK] + [
        batch_answer(*[(r["id"], 200, {}, {"id": r["id"]}) for r in requests[start:start + 20]])
        for start in (0, 20, 40)]
    client, dummy = make_client(scripted_server)
    answers = client.batch(requests)
    assert sorted(answers, key=int) == [r["id"] for r in requests]
    sizes = [len(json.loads(r[3])["requests"]) for r in scripted_server.requests[1:]]
    assert sizes == [20, 20, 5]


def test_a_429_inside_a_200_batch_is_resent_after_its_own_retry_after(scripted_server):
    requests = [dict(id="1", method="PATCH", url="/devices/a", body={"accountEnabled": False}),
                dict(id="2", method="PATCH", url="/devices/b", body={"accountEnabled": False})]
    scripted_server.script = [
        TOKEN_OK,
        batch_answer(("2", 429, {"Retry-After": "3"}, {"error": {"code": "TooManyRequests"}}),
                     ("1", 204, {}, None)),
        batch_answer(("2", 204, {}, None)),
    ]
    client, sleeps = make_client(scripted_server)
    answers = client.batch(requests)
    assert answers["1"].status == 204 and answers["2"].status == 204
    retried = json.loads(scripted_server.requests[2][3])["requests"]
    assert retried == [{"id": "2", "method": "PATCH", "url": "/devices/b", "body": {"accountEnabled": False},
                        "headers": {"Content-Type": "application/json"}}]
    # One wait of the server's Retry-After (plus jitter), spent in the limiter, not twice.
    assert 3.0 <= sleeps[-1] <= 3.1
    assert len([wait for wait in sleeps if wait >= 1]) == 1


def test_a_5xx_write_inside_a_batch_is_handed_back_not_resent(scripted_server):
    scripted_server.script = [TOKEN_OK, batch_answer(("1", 503, {}, {"error": {"code": "ServiceUnavailable"}}))]
    client, dummy = make_client(scripted_server)
    answers = client.batch([dict(id="1", method="PATCH", url="/devices/a", body={"displayName": "x"})])
    assert answers["1"].status == 503 and answers["1"].error.maybe_applied
    assert len(scripted_server.requests) == 2


def test_a_lost_batch_of_writes_marks_every_item_unsure(scripted_server):
    scripted_server.script = [TOKEN_OK, "reset"]
    client, dummy = make_client(scripted_server)
    requests = [dict(id="1", method="PATCH", url="/devices/a", body={}),
                dict(id="2", method="DELETE", url="/devices/b")]
    answers = client.batch(requests)
    assert [answers[i].status for i in ("1", "2")] == [None, None]
    assert answers["1"].error.maybe_applied and answers["2"].error.maybe_applied
    assert (answers["2"].error.method, answers["2"].error.path) == ("DELETE", "/devices/b")


def test_a_lost_batch_of_reads_is_simply_resent(scripted_server):
    scripted_server.script = [TOKEN_OK, "reset", batch_answer(("1", 200, {}, {"id": "a"}))]
    client, dummy = make_client(scripted_server)
    assert client.batch([dict(id="1", method="GET", url="/devices/a")])["1"].body == {"id": "a"}


def test_a_batch_answer_missing_an_item_is_an_error(scripted_server):
    scripted_server.script = [TOKEN_OK, batch_answer(("1", 200, {}, {}))]
    client, dummy = make_client(scripted_server)
    with pytest.raises(ApiError):
        client.batch([dict(id="1", method="GET", url="/a"), dict(id="2", method="GET", url="/b")])


def test_app_only_and_delegated_tokens_are_told_apart():
    def token(claims):
        payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
        return "eyJhbGciOiJub25lIn0.%s.sig" % payload

    assert token_claims(token({"roles": ["Device.ReadWrite.All"]})) == {"roles": ["Device.ReadWrite.All"]}
    assert token_claims("opaque") == {}
    client = GraphClient(HttpTransport(), "https://g", access_token=token({"scp": "Directory.AccessAsUser.All"}))
    assert client.app_only is False
    assert GraphClient(HttpTransport(), "https://g", access_token=token({"roles": []})).app_only is True


@pytest.mark.parametrize("cloud, graph, authority", [
    ("global", "https://graph.microsoft.com", "https://login.microsoftonline.com"),
    ("usgov", "https://graph.microsoft.us", "https://login.microsoftonline.us"),
    ("usgovdod", "https://dod-graph.microsoft.us", "https://login.microsoftonline.us"),
    ("china", "https://microsoftgraph.chinacloudapi.cn", "https://login.chinacloudapi.cn"),
])
def test_clouds_set_graph_and_authority_hosts(cloud, graph, authority):
    params = dict(cloud=cloud, graph_endpoint=None, authority_host=None, tenant_id=TENANT, client_id="c",
                  client_secret="s", access_token=None, client_certificate_path=None, timeout=5,
                  validate_certs=True, max_retries=1, api_version="v1.0")
    client = GraphClient.from_params(params)
    assert CLOUDS[cloud] == (graph, authority)
    assert client.base == graph + "/v1.0"
    assert client.credential.token_url == "%s/%s/oauth2/v2.0/token" % (authority, TENANT)
    assert client.credential.scope == graph + "/.default"
    params.update(graph_endpoint="https://graph.example", authority_host="https://login.example")
    client = GraphClient.from_params(params)
    assert client.base == "https://graph.example/v1.0"
    assert client.credential.token_url.startswith("https://login.example/")


@pytest.mark.parametrize("injected, graph", [
    ("AzureCloud", "https://graph.microsoft.com"),
    ("AzureUSGovernment", "https://graph.microsoft.us"),
    ("AzureChinaCloud", "https://microsoftgraph.chinacloudapi.cn"),
    ("", "https://graph.microsoft.com"),
])
def test_awx_cloud_environment_names_pick_the_national_cloud(injected, graph):
    params = dict(cloud=injected, graph_endpoint=None, authority_host=None, tenant_id=TENANT, client_id="c",
                  client_secret="s", timeout=5, validate_certs=True, max_retries=1, api_version="v1.0")
    assert GraphClient.from_params(params).base == graph + "/v1.0"


def test_an_unknown_cloud_names_the_accepted_ones():
    params = dict(cloud="AzureGermanCloud", graph_endpoint=None, authority_host=None, tenant_id=TENANT, client_id="c",
                  client_secret="s", timeout=5, validate_certs=True, max_retries=1, api_version="v1.0")
    with pytest.raises(InputError) as caught:
        GraphClient.from_params(params)
    assert "AzureGermanCloud" in str(caught.value)
    for name in ("global", "usgov", "usgovdod", "china", "AzureCloud", "AzureUSGovernment", "AzureChinaCloud"):
        assert name in str(caught.value)


def test_certificate_authentication_signs_a_client_assertion(scripted_server, tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    pem = make_certificate(tmp_path)
    scripted_server.script = [TOKEN_OK, (200, {}, {"id": "d"})]
    client, dummy = make_client(scripted_server, certificate=ClientCertificate(pem))
    client.request("GET", "/devices/d")
    form = parse_qs(scripted_server.requests[0][3])
    assert "client_secret" not in form
    assert form["client_assertion_type"] == ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]
    header_part, claims_part, signature_part = form["client_assertion"][0].split(".")
    header, claims = decode_part(header_part), decode_part(claims_part)
    assert header["alg"] == "RS256" and header["x5t"] and header["x5t#S256"]
    assert claims["aud"] == "%s/%s/oauth2/v2.0/token" % (scripted_server.url, TENANT)
    assert claims["iss"] == claims["sub"] == "cid"
    assert 300 <= claims["exp"] - claims["nbf"] <= 600
    # The signature verifies with the certificate's public key (raises otherwise).
    with open(pem, "rb") as handle:
        public_key = x509.load_pem_x509_certificate(handle.read()).public_key()
    public_key.verify(base64.urlsafe_b64decode(signature_part + "=" * (-len(signature_part) % 4)),
                      ("%s.%s" % (header_part, claims_part)).encode(), padding.PKCS1v15(), hashes.SHA256())


def decode_part(part):
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_an_unreadable_certificate_is_an_input_error(tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a pem")
    with pytest.raises(InputError):
        ClientCertificate(str(bad))
    with pytest.raises(InputError):
        ClientCertificate(str(tmp_path / "missing.pem"))


def make_certificate(tmp_path):
    from sandbox.msgraph_auth import make_test_certificate

    return make_test_certificate(tmp_path)[0]


def test_sub_requests_refused_for_an_expired_token_are_resent_with_a_new_one(scripted_server):
    expired = {"error": {"code": "InvalidAuthenticationToken", "message": "Lifetime validation failed"}}
    scripted_server.script = [
        TOKEN_OK,
        batch_answer(("1", 204, {}, None), ("2", 401, {}, expired)),
        (200, {}, {"token_type": "Bearer", "expires_in": 3599, "access_token": "eyJ.second.token"}),
        batch_answer(("2", 204, {}, None)),
    ]
    client, sleeps = make_client(scripted_server)
    answers = client.batch([dict(id="1", method="PATCH", url="/devices/a", body={}),
                            dict(id="2", method="PATCH", url="/devices/b", body={})])
    assert answers["1"].status == 204 and answers["2"].status == 204
    assert scripted_server.requests[3][2]["Authorization"] == "Bearer eyJ.second.token"
    # No back-off: only the write limiter's spacing between sub-requests.
    assert all(wait < 0.1 for wait in sleeps)


def test_a_graph_error_that_quotes_a_long_request_back_is_cut():
    from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_client import graph_error

    long_filter = "displayName eq '" + "x" * 10000
    body = {"error": {"code": "BadRequest" + "!" * 5000,
                      "message": "Invalid filter clause: unterminated string literal in '%s'" % long_filter,
                      "innerError": {"request-id": "r" * 5000}}}
    error = graph_error(400, body, {}, "GET", "/devices")
    text = str(error)
    assert "Invalid filter clause: unterminated string literal in 'displayName eq 'xxx" in text
    assert "(10072 characters)" in text and "(5010 characters)" in text and "(5000 characters)" in text
    assert len(text) < 1500


def test_a_graph_error_whose_fields_are_not_text_is_shown_not_crashed_on():
    from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_client import graph_error

    error = graph_error(400, {"error": {"code": 5, "message": {"text": "no"}}}, {}, "GET", "/devices")
    assert error.message == "{'text': 'no'}" and error.api_code == "5"


def test_room_another_machine_took_in_the_write_window_is_waited_for_not_found_by_429s(monkeypatch):
    """The server's x-ms-throttle-limit-percentage counts writes this controller never saw (another execution
    node, same app and tenant): the next batch waits for the room instead of drawing 429s."""
    from ansible_collections.fleetguard.devices.plugins.module_utils import msgraph_client
    from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_client import GraphClient
    from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_credentials import ClientSecretCredential
    from ansible_collections.fleetguard.devices.plugins.module_utils.transport import HttpTransport
    from sandbox.msgraph import GraphSandbox

    monkeypatch.setattr(msgraph_client, "WRITE_QUOTA_APP", (10, 2.0))
    with GraphSandbox(devices=20, throttling=True, write_limits={"app": (10, 2.0)}) as sandbox:
        credential = ClientSecretCredential(sandbox.url, sandbox.tenant_id, sandbox.client_id,
                                            sandbox.url + "/.default", secret=sandbox.client_secret)
        client = GraphClient(HttpTransport(timeout=5, max_retries=3, backoff_base=0.001, backoff_cap=0.01),
                             sandbox.url, credential=credential)
        ids = sorted(oid for oid, device in sandbox.devices.items() if device["operatingSystem"] == "Windows")[:4]
        assert len(ids) == 4
        for dummy in range(8):  # the other machine's writes
            assert sandbox.rate_limiter.check("app", "%s/%s" % (sandbox.client_id, sandbox.tenant_id)).allowed

        def patch(object_ids):
            return client.batch([dict(id=str(n), method="PATCH", url="/devices/%s" % object_id,
                                      body={"accountEnabled": False}) for n, object_id in enumerate(object_ids, 1)])

        first = patch(ids[:1])  # the 9th write of the window: Graph answers "0.9"
        assert first["1"].headers.get("x-ms-throttle-limit-percentage") == "0.9"
        rest = patch(ids[1:])
        assert [answer.status for answer in rest.values()] == [204] * 3
        assert [e["status"] for e in sandbox.wire.entries(method="PATCH")] == [204] * 4
        assert all(sandbox.devices[object_id]["accountEnabled"] is False for object_id in ids)
