"""Tests of the Microsoft Graph device sandbox (sandbox/msgraph*.py, sandbox/odata.py)."""

import base64
import datetime
import http.client
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from sandbox import GraphSandbox

REPO_ROOT = Path(__file__).resolve().parents[2]
NOT_FOUND_TAIL = "does not exist or one of its queried reference-property objects are not present."
NON_WINDOWS = "Properties other than ExtendedAttribute1..15 can be modified only on windows devices."
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class Graph:
    """A requests session holding a bearer token for the sandbox."""

    def __init__(self, sandbox, token=None):
        self.sandbox = sandbox
        self.session = requests.Session()
        self.token = token

    def fetch_token(self, **overrides):
        form = {
            "grant_type": "client_credentials",
            "client_id": self.sandbox.client_id,
            "client_secret": self.sandbox.client_secret,
            "scope": "https://graph.microsoft.com/.default",
            **overrides,
        }
        response = self.session.post(f"{self.sandbox.url}/{self.sandbox.tenant_id}/oauth2/v2.0/token", data=form)
        self.token = response.json()["access_token"]
        return self.token

    def call(self, method, path, **kwargs):
        if self.token is None:
            self.fetch_token()
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        url = path if path.startswith("http") else self.sandbox.url + path
        return self.session.request(method, url, headers=headers, timeout=5, **kwargs)

    def get(self, path, **kwargs):
        return self.call("GET", path, **kwargs)

    def patch(self, path, body, **kwargs):
        return self.call("PATCH", path, json=body, **kwargs)

    def batch(self, requests_, version="v1.0"):
        return self.call("POST", f"/{version}/$batch", json={"requests": requests_})


@pytest.fixture
def sb():
    with GraphSandbox(devices=50, seed=1, throttling=False) as sandbox:
        yield sandbox


@pytest.fixture
def graph(sb):
    client = Graph(sb)
    yield client
    client.session.close()


def first_device(sb, **wanted):
    return next(device for device in sb.devices.values()
                if all(device.get(key) == value for key, value in wanted.items()))


def error_of(response):
    return response.status_code, response.json()["error"]["code"]


def raw_request(sandbox, method, raw_path, token, body=None):
    """Send a request-target byte for byte (requests would normalise dot segments)."""
    connection = http.client.HTTPConnection(sandbox.server.server_name, sandbox.server.server_port, timeout=5)
    headers = {"Authorization": f"Bearer {token}"}
    payload = None
    if body is not None:
        payload, headers["Content-Type"] = json.dumps(body), "application/json"
    try:
        connection.request(method, raw_path, body=payload, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


# token endpoint


def test_token_with_client_secret(sb, graph):
    response = graph.session.post(
        f"{sb.url}/{sb.tenant_id}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": sb.client_id, "client_secret": sb.client_secret,
              "scope": f"{sb.url}/.default"},
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["token_type"], body["expires_in"], body["ext_expires_in"]) == ("Bearer", 3599, 3599)
    assert body["access_token"].startswith("eyJ") and body["access_token"].count(".") == 2
    assert body["access_token"] in sb.issued_tokens()
    by_domain = graph.session.post(
        f"{sb.url}/fleetguard.onmicrosoft.com/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": sb.client_id, "client_secret": sb.client_secret,
              "scope": "https://graph.microsoft.com/.default"},
    )
    assert by_domain.status_code == 200
    graph.token = body["access_token"]
    assert graph.get("/v1.0/devices").status_code == 200


@pytest.mark.parametrize(
    "tenant, overrides, status, error, code",
    [
        (None, {"client_secret": "wrong"}, 401, "invalid_client", 7000215),
        (None, {"scope": "https://graph.microsoft.com/User.Read"}, 400, "invalid_scope", 70011),
        ("00000000-0000-0000-0000-000000000000", {}, 400, "invalid_request", 90002),
        (None, {"client_id": "11111111-2222-3333-4444-555555555555"}, 400, "unauthorized_client", 700016),
        (None, {"client_secret": None}, 400, "invalid_client", 7000218),
        (None, {"grant_type": "password"}, 400, "unsupported_grant_type", 70003),
    ],
)
def test_token_errors_are_aadsts_shaped(sb, tenant, overrides, status, error, code):
    form = {"grant_type": "client_credentials", "client_id": sb.client_id, "client_secret": sb.client_secret,
            "scope": "https://graph.microsoft.com/.default", **overrides}
    form = {key: value for key, value in form.items() if value is not None}
    response = requests.post(f"{sb.url}/{tenant or sb.tenant_id}/oauth2/v2.0/token", data=form)
    assert response.status_code == status
    body = response.json()
    assert body["error"] == error and body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert f"Trace ID: {body['trace_id']}" in body["error_description"]
    assert {"timestamp", "correlation_id", "error_uri"} <= set(body)
    assert response.headers["x-ms-request-id"] == body["trace_id"]


@pytest.fixture(scope="module")
def certificate():
    """A throwaway self-signed certificate and its key."""
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    def make():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fleetguard-sandbox")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256()))
        return key, cert, cert.public_bytes(serialization.Encoding.PEM).decode()

    return make(), make()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def client_assertion(key, cert, aud, iss, alg="RS256", exp_in=300, nbf_in=0, signing_key=None):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    header = {"typ": "JWT", "alg": alg}
    if alg == "RS256":
        header["x5t"] = b64url(cert.fingerprint(hashes.SHA1()))
    else:
        header["x5t#S256"] = b64url(cert.fingerprint(hashes.SHA256()))
    now = int(time.time())
    claims = {"aud": aud, "iss": iss, "sub": iss, "jti": str(uuid.uuid4()), "nbf": now + nbf_in, "exp": now + exp_in}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    pad = padding.PKCS1v15() if alg == "RS256" else padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH)
    signature = (signing_key or key).sign(signing_input.encode(), pad, hashes.SHA256())
    return f"{signing_input}.{b64url(signature)}"


def test_token_with_client_assertion(sb, certificate):
    (key, cert, pem), (other_key, other_cert, _other_pem) = certificate
    thumbprints = sb.register_certificate(pem)
    assert len(thumbprints["thumbprint"]) == 40
    endpoint = f"{sb.url}/{sb.tenant_id}/oauth2/v2.0/token"

    def request_token(assertion, assertion_type=ASSERTION_TYPE):
        return requests.post(endpoint, data={
            "grant_type": "client_credentials", "client_id": sb.client_id, "scope": "https://graph.microsoft.com/.default",
            "client_assertion_type": assertion_type, "client_assertion": assertion,
        })

    def assertion(**changes):
        arguments = {"key": key, "cert": cert, "aud": endpoint, "iss": sb.client_id, **changes}
        return client_assertion(**arguments)

    assert request_token(assertion()).status_code == 200
    assert request_token(assertion(alg="PS256")).status_code == 200
    assert request_token(assertion(nbf_in=120)).status_code == 200  # within the 5 minute skew
    rejected = {
        "wrong audience": (assertion(aud="https://login.microsoftonline.com/x/oauth2/v2.0/token"), 50012),
        "expired": (assertion(exp_in=-5), 700024),
        "not yet valid": (assertion(nbf_in=900), 700024),
        "other issuer": (assertion(iss="someone-else"), 700021),
        "forged signature": (assertion(signing_key=other_key), 700027),
        "unregistered certificate": (assertion(key=other_key, cert=other_cert), 700027),
    }
    for reason, (token_assertion, code) in rejected.items():
        response = request_token(token_assertion)
        assert (response.status_code, response.json()["error"], response.json()["error_codes"]) == (
            401, "invalid_client", [code]), reason
    assert request_token("not.a.jwt").status_code == 400
    assert request_token(assertion(), assertion_type="urn:other").status_code == 400


# authentication on Graph


def test_graph_rejects_missing_malformed_and_expired_tokens(sb, graph):
    empty = requests.get(f"{sb.url}/v1.0/devices")
    assert error_of(empty) == (401, "InvalidAuthenticationToken")
    assert empty.json()["error"]["message"] == "Access token is empty."
    assert empty.headers["WWW-Authenticate"].startswith('Bearer realm=""')
    garbage = requests.get(f"{sb.url}/v1.0/devices", headers={"Authorization": "Bearer abc.def.ghi"})
    assert garbage.json()["error"]["message"].startswith("CompactToken validation failed")
    graph.fetch_token()
    assert sb.expire_tokens() == 1
    expired = graph.get("/v1.0/devices")
    assert error_of(expired) == (401, "InvalidAuthenticationToken")
    assert expired.json()["error"]["message"] == "Lifetime validation failed, the token is expired."
    graph.fetch_token()
    started = time.time()
    sb.clock = lambda: started + 3600  # the token's hour is over
    assert graph.get("/v1.0/devices").status_code == 401


def test_read_only_app_cannot_write(sb):
    reader = Graph(sb, sb.issue_token(roles=["Device.Read.All"]))
    device = first_device(sb, operatingSystem="Windows")
    assert reader.get(f"/v1.0/devices/{device['id']}").status_code == 200
    denied = reader.patch(f"/v1.0/devices/{device['id']}", {"accountEnabled": False})
    assert error_of(denied) == (403, "Authorization_RequestDenied")


# generated data


def test_generated_fleet_is_deterministic_and_realistic():
    one, same, other = (GraphSandbox(devices=60, seed=seed) for seed in (7, 7, 8))
    assert one.devices == same.devices and one.users == same.users
    assert one.devices != other.devices
    devices = list(one.devices.values())
    assert len({device["displayName"] for device in devices}) == 60
    assert {device["operatingSystem"] for device in devices} == {"Windows", "MacMDM", "iOS", "Android", "Linux"}
    assert sum(device["operatingSystem"] == "Windows" for device in devices) > 20
    assert any(not device["displayName"].startswith("FG-") for device in devices)
    for device in devices:
        assert re.fullmatch(r"[0-9a-f-]{36}", device["id"]) and re.fullmatch(r"[0-9a-f-]{36}", device["deviceId"])
        assert list(device["extensionAttributes"]) == [f"extensionAttribute{n}" for n in range(1, 16)]
        # null: never signed in ("unknown" to Graph); otherwise never before the registration
        assert device["approximateLastSignInDateTime"] is None or (
            device["registrationDateTime"] <= device["approximateLastSignInDateTime"])
        assert device["trustType"] in ("AzureAd", "ServerAd", "Workplace")
    assert any(device["extensionAttributes"]["extensionAttribute1"] for device in devices)
    assert {device["accountEnabled"] for device in devices} == {True, False}
    owned = [device_id for ids in one.user_devices.values() for device_id in ids]
    assert owned and all(one.devices[device_id]["platform"] for device_id in owned)
    assert all(user["userPrincipalName"].endswith("@fleetguard.onmicrosoft.com") for user in one.users.values())


# GET one


def test_get_by_object_id_and_by_alternate_key(sb, graph):
    device = first_device(sb)
    by_id = graph.get(f"/v1.0/devices/{device['id']}")
    assert by_id.status_code == 200
    body = by_id.json()
    assert body["@odata.context"] == f"{sb.url}/v1.0/$metadata#devices/$entity"
    assert body["displayName"] == device["displayName"] and body["deviceId"] == device["deviceId"]
    assert by_id.headers["OData-Version"] == "4.0" and by_id.headers["x-ms-resource-unit"] == "1"
    assert by_id.headers["Content-Type"].startswith("application/json;odata.metadata=minimal")
    for path in (
        f"/v1.0/devices(deviceId='{device['deviceId']}')",
        f"/v1.0/devices%28deviceId%3D%27{device['deviceId']}%27%29",  # a client that percent-encodes
        f"/v1.0/devices('{device['id']}')",
        f"/beta/devices(deviceId='{device['deviceId'].upper()}')",
    ):
        response = graph.get(path)
        assert response.status_code == 200, path
        assert response.json()["id"] == device["id"]


def test_unknown_and_malformed_keys(sb, graph):
    missing_id = str(uuid.uuid4())
    missing = graph.get(f"/v1.0/devices/{missing_id}")
    assert error_of(missing) == (404, "Request_ResourceNotFound")
    assert missing.json()["error"]["message"] == f"Resource '{missing_id}' {NOT_FOUND_TAIL}"
    assert graph.get(f"/v1.0/devices(deviceId='{missing_id}')").status_code == 404
    malformed = graph.get("/v1.0/devices/FG-WS-0001")
    assert error_of(malformed) == (400, "Request_BadRequest")
    assert malformed.json()["error"]["message"] == "Invalid object identifier 'FG-WS-0001'."
    for predicate in ("deviceId=abc", "deviceId='abc", "deviceId=''abc'", "displayName='x'"):
        assert error_of(graph.get(f"/v1.0/devices({predicate})")) == (400, "Request_BadRequest"), predicate


def test_alternate_key_literal_unescapes_doubled_quotes(sb, graph):
    added = sb.add_device(deviceId="fg-o'brien-01", displayName="O'Brien laptop")
    response = graph.get("/v1.0/devices(deviceId='fg-o''brien-01')")
    assert response.status_code == 200 and response.json()["id"] == added["id"]
    assert graph.get("/v1.0/devices(deviceId='fg-o'brien-01')").status_code == 400  # lone quote ends the literal
    patched = graph.patch("/v1.0/devices(deviceId='fg-o''brien-01')", {"displayName": "O'Brien's laptop"})
    assert patched.status_code == 204
    assert sb.devices[added["id"]]["displayName"] == "O'Brien's laptop"


def test_error_headers_and_inner_error(sb, graph):
    response = graph.get(f"/v1.0/devices/{uuid.uuid4()}", headers={"client-request-id": "my-trace-1"})
    inner = response.json()["error"]["innerError"]
    assert response.headers["client-request-id"] == "my-trace-1" == inner["client-request-id"]
    assert response.headers["request-id"] == inner["request-id"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", inner["date"])
    assert json.loads(response.headers["x-ms-ags-diagnostic"])["ServerInfo"]
    fresh = graph.get("/v1.0/devices?$top=1")
    assert fresh.headers["client-request-id"] == fresh.headers["request-id"]


# $select


def test_select_on_single_get_and_list(sb, graph):
    device = first_device(sb)
    default = graph.get(f"/v1.0/devices/{device['id']}").json()
    assert "extensionAttributes" in default and len(default["extensionAttributes"]) == 15
    assert "isManagementRestricted" not in default and "onPremisesSecurityIdentifier" not in default
    assert "name" not in default  # Rome properties: beta user-scoped view only
    selected = graph.get(f"/v1.0/devices/{device['id']}", params={"$select": "id,extensionAttributes"}).json()
    assert selected["@odata.context"].endswith("#devices(id,extensionAttributes)/$entity")
    assert set(selected) == {"@odata.context", "id", "extensionAttributes"}
    assert list(selected["extensionAttributes"]) == [f"extensionAttribute{n}" for n in range(1, 16)]
    only_restricted = graph.get(f"/v1.0/devices/{device['id']}?$select=isManagementRestricted").json()
    assert set(only_restricted) == {"@odata.context", "isManagementRestricted"}
    listed = graph.get("/v1.0/devices", params={"$select": "displayName,deviceId", "$top": 3}).json()
    assert listed["@odata.context"].endswith("#devices(displayName,deviceId)")
    assert all(set(item) == {"displayName", "deviceId"} for item in listed["value"])
    for bad in ("colour", "extensionAttributes/extensionAttribute1", "name"):
        assert error_of(graph.get(f"/v1.0/devices/{device['id']}", params={"$select": bad})) == (400, "Request_BadRequest")
    assert "name" in graph.get(f"/beta/devices/{device['id']}", params={"$select": "id,name"}).json()


def test_extension_attributes_can_be_select_only():
    with GraphSandbox(devices=3, extension_attributes_by_default=False) as sandbox:
        client = Graph(sandbox)
        device_id = next(iter(sandbox.devices))
        assert "extensionAttributes" not in client.get(f"/v1.0/devices/{device_id}").json()
        selected = client.get(f"/v1.0/devices/{device_id}?$select=extensionAttributes").json()
        assert len(selected["extensionAttributes"]) == 15


# $filter


def names(response):
    assert response.status_code == 200, response.text
    return sorted(item["displayName"] for item in response.json()["value"])


def expected_names(sb, predicate):
    return sorted(device["displayName"] for device in sb.devices.values() if predicate(device))


def test_filters_by_default_properties(sb, graph):
    sb.add_device(displayName="O'Brien's iPad", operatingSystem="iOS")
    target = first_device(sb, operatingSystem="Android")

    def listed(expression):
        return names(graph.get("/v1.0/devices", params={"$filter": expression, "$top": 999}))

    assert listed("displayName eq 'O''Brien''s iPad'") == ["O'Brien's iPad"]
    assert listed("displayName eq 'o''brien''s ipad'") == ["O'Brien's iPad"]  # directory strings ignore case
    assert listed("startswith(displayName,'FG-MAC')") == expected_names(
        sb, lambda d: d["displayName"].startswith("FG-MAC"))
    assert listed(f"deviceId eq '{target['deviceId']}'") == [target["displayName"]]
    assert listed(f"id in ('{target['id']}', '{uuid.uuid4()}')") == [target["displayName"]]
    assert listed("accountEnabled eq false") == expected_names(sb, lambda d: d["accountEnabled"] is False)
    assert listed("operatingSystem eq 'iOS' and accountEnabled eq true") == expected_names(
        sb, lambda d: d["operatingSystem"] == "iOS" and d["accountEnabled"])
    assert listed("trustType in ('ServerAd','AzureAd') or operatingSystem eq 'Linux'") == expected_names(
        sb, lambda d: d["trustType"] in ("ServerAd", "AzureAd") or d["operatingSystem"] == "Linux")
    assert listed("(operatingSystem eq 'Android') and startswith(operatingSystemVersion, '14')") == expected_names(
        sb, lambda d: d["operatingSystem"] == "Android" and d["operatingSystemVersion"].startswith("14"))
    assert listed("mdmAppId eq '0000000a-0000-0000-c000-000000000000'") == expected_names(sb, lambda d: d["isManaged"])


@pytest.mark.parametrize(
    "expression, code, fragment",
    [
        ("displayName eq 'O'Brien'", "Request_BadRequest", "Syntax error"),
        ("displayName eq 'unterminated", "Request_BadRequest", "unterminated string literal"),
        ("colour eq 'red'", "Request_BadRequest", "Could not find a property named 'colour'"),
        ("accountEnabled eq 'yes'", "Request_BadRequest", "incompatible types"),
        ("displayName eq", "Request_BadRequest", "unexpected end"),
        ("startswith(displayName 'a')", "Request_BadRequest", "expected ','"),
        ("displayName gt 'a'", "Request_UnsupportedQuery", "property 'displayName'"),
        ("endswith(displayName,'1')", "Request_UnsupportedQuery", "property 'displayName'"),
        ("registrationDateTime ge 2024-01-01T00:00:00Z", "Request_UnsupportedQuery", "registrationDateTime"),
    ],
)
def test_malformed_or_unsupported_filters(graph, expression, code, fragment):
    response = graph.get("/v1.0/devices", params={"$filter": expression})
    assert error_of(response) == (400, code)
    assert fragment in response.json()["error"]["message"]


ADVANCED = {"ConsistencyLevel": "eventual"}


@pytest.mark.parametrize(
    "expression, predicate",
    [
        ("extensionAttributes/extensionAttribute1 eq 'BYOD-Device'",
         lambda d: d["extensionAttributes"]["extensionAttribute1"] == "BYOD-Device"),
        ("operatingSystem ne 'Windows'", lambda d: d["operatingSystem"] != "Windows"),
        ("not(startswith(displayName,'FG-'))", lambda d: not d["displayName"].startswith("FG-")),
        ("extensionAttributes/extensionAttribute2 eq null", lambda d: d["extensionAttributes"]["extensionAttribute2"] is None),
        ("not(extensionAttributes/extensionAttribute3 eq 'Berlin')",
         lambda d: d["extensionAttributes"]["extensionAttribute3"] != "Berlin"),
    ],
)
def test_advanced_filters_need_consistency_level_and_count(sb, graph, expression, predicate):
    params = {"$filter": expression, "$top": 999}
    plain = graph.get("/v1.0/devices", params=params)
    assert error_of(plain) == (400, "Request_UnsupportedQuery")
    assert "of resource 'Device'" in plain.json()["error"]["message"]
    header_only = graph.get("/v1.0/devices", params=params, headers=ADVANCED)
    assert error_of(header_only) == (400, "Request_UnsupportedQuery")
    advanced = graph.get("/v1.0/devices", params={**params, "$count": "true"}, headers=ADVANCED)
    assert names(advanced) == expected_names(sb, predicate)
    assert advanced.json()["@odata.count"] == len(expected_names(sb, predicate))


def test_orderby_alone_is_default_but_with_filter_is_advanced(sb, graph):
    ordered = graph.get("/v1.0/devices", params={"$orderby": "displayName desc", "$top": 999})
    assert [item["displayName"] for item in ordered.json()["value"]] == sorted(
        (d["displayName"] for d in sb.devices.values()), key=str.casefold, reverse=True)
    params = {"$orderby": "displayName", "$filter": "startswith(displayName,'FG-WS')"}
    assert error_of(graph.get("/v1.0/devices", params=params)) == (400, "Request_UnsupportedQuery")
    advanced = graph.get("/v1.0/devices", params={**params, "$count": "true"}, headers=ADVANCED)
    assert [item["displayName"] for item in advanced.json()["value"]] == expected_names(
        sb, lambda d: d["displayName"].startswith("FG-WS"))


def test_datetime_filter_search_expand_and_unsupported_options(sb, graph):
    cutoff = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=90)).strftime("%Y-%m-%dT%H:%M:%SZ")
    stale = graph.get("/v1.0/devices", params={"$filter": f"approximateLastSignInDateTime le {cutoff}", "$top": 999})
    assert names(stale) == expected_names(
        sb, lambda d: d["approximateLastSignInDateTime"] is not None and d["approximateLastSignInDateTime"] <= cutoff)
    assert names(stale)  # the generated fleet has a stale tail

    search = {"$search": '"displayName:mac"'}
    assert error_of(graph.get("/v1.0/devices", params=search)) == (400, "Request_UnsupportedQuery")
    found = graph.get("/v1.0/devices", params={**search, "$top": 999}, headers=ADVANCED)
    assert names(found) == expected_names(sb, lambda d: "mac" in re.split(r"[^0-9a-z]+", d["displayName"].lower()))

    user, owned = owner_with_devices(sb)
    expanded = graph.get(f"/v1.0/devices/{owned[0]}", params={"$select": "id", "$expand": "registeredUsers"}).json()
    assert [item["userPrincipalName"] for item in expanded["registeredUsers"]] == [user["userPrincipalName"]]
    for option in ("$skip=2", "$format=json", "$select=id&$select=displayName"):
        assert error_of(graph.get(f"/v1.0/devices?{option}")) == (400, "Request_BadRequest"), option


# paging, $top, $count


def test_paging_follows_absolute_next_links(sb, graph):
    seen, url, pages = [], "/v1.0/devices?$top=7&$select=id,displayName", 0
    while url:
        body = graph.get(url).json()
        seen += [item["id"] for item in body["value"]]
        pages += 1
        url = body.get("@odata.nextLink")
        if url:
            assert url.startswith(f"{sb.url}/v1.0/devices?") and "$skiptoken=" in url and "$top=7" in url
    assert pages == 8 and len(seen) == len(set(seen)) == 50
    assert set(seen) == set(sb.devices)
    filtered = graph.get("/v1.0/devices", params={"$filter": "operatingSystem eq 'Windows'", "$top": 2}).json()
    second = graph.get(filtered["@odata.nextLink"]).json()
    assert all(item["operatingSystem"] == "Windows" for item in second["value"])
    forged = graph.get("/v1.0/devices?$skiptoken=forged")
    assert error_of(forged) == (400, "Directory_ExpiredPageToken")


def test_default_page_size_is_100():
    with GraphSandbox(devices=120, throttling=False) as sandbox:
        client = Graph(sandbox)
        first = client.get("/v1.0/devices").json()
        assert len(first["value"]) == 100 and "@odata.nextLink" in first
        assert len(client.get(first["@odata.nextLink"]).json()["value"]) == 20


@pytest.mark.parametrize("top", ["0", "1000", "-1", "ten"])
def test_top_must_be_between_1_and_999(graph, top):
    response = graph.get(f"/v1.0/devices?$top={top}")
    assert error_of(response) == (400, "Request_BadRequest")
    assert response.json()["error"]["message"] == (
        f"Invalid page size specified: '{top}'. Must be between 1 and 999 inclusive.")


def test_top_999_is_accepted(graph):
    assert len(graph.get("/v1.0/devices?$top=999").json()["value"]) == 50


def test_count_option_and_count_segment(sb, graph):
    counted = graph.get("/v1.0/devices", params={"$count": "true", "$top": 10}, headers=ADVANCED).json()
    assert counted["@odata.count"] == 50
    assert "@odata.count" not in graph.get(counted["@odata.nextLink"], headers=ADVANCED).json()
    ignored = graph.get("/v1.0/devices", params={"$count": "true"})
    assert ignored.status_code == 200 and "@odata.count" not in ignored.json()
    segment = graph.get("/v1.0/devices/$count", headers=ADVANCED)
    assert (segment.status_code, segment.text) == (200, "50")
    assert segment.headers["Content-Type"].startswith("text/plain")
    windows = graph.get("/v1.0/devices/$count", params={"$filter": "operatingSystem eq 'Windows'"}, headers=ADVANCED)
    assert windows.text == str(sum(d["operatingSystem"] == "Windows" for d in sb.devices.values()))
    without_header = graph.get("/v1.0/devices/$count")
    assert error_of(without_header) == (400, "Request_BadRequest")
    assert without_header.json()["error"]["message"] == "$count is not currently supported."


# PATCH


def test_patch_merges_and_extension_attributes_merge_key_by_key(sb, graph):
    device = first_device(sb, operatingSystem="Windows")
    before = json.loads(json.dumps(device))
    path = f"/v1.0/devices/{device['id']}"
    response = graph.patch(path, {"accountEnabled": False, "extensionAttributes": {"extensionAttribute1": "BYOD-Device"}})
    assert (response.status_code, response.content) == (204, b"")
    assert graph.patch(path, {"extensionAttributes": {"extensionAttribute7": "quarantined"}}).status_code == 204
    after = graph.get(path).json()
    assert after["accountEnabled"] is False
    assert after["extensionAttributes"]["extensionAttribute1"] == "BYOD-Device"
    assert after["extensionAttributes"]["extensionAttribute7"] == "quarantined"
    assert after["displayName"] == before["displayName"] and after["trustType"] == before["trustType"]
    assert graph.patch(path, {"extensionAttributes": {"extensionAttribute1": None}}).status_code == 204
    cleared = graph.get(path, params={"$select": "extensionAttributes"}).json()["extensionAttributes"]
    assert cleared["extensionAttribute1"] is None and cleared["extensionAttribute7"] == "quarantined"
    assert graph.patch(path, {"isCompliant": True, "isManaged": True, "displayName": "FG-RENAMED"}).status_code == 204
    assert sb.devices[device["id"]]["displayName"] == "FG-RENAMED"


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"extensionAttributes": {"extensionAttribute16": "x"}}, 400, "Request_BadRequest"),
        ({"extensionAttributes": {"ExtensionAttribute1": "x"}}, 400, "Request_BadRequest"),
        ({"extensionAttributes": {"extensionAttribute1": "x" * 1025}}, 400, "Request_BadRequest"),
        ({"extensionAttributes": {"extensionAttribute1": 5}}, 400, "Request_BadRequest"),
        ({"id": str(uuid.uuid4())}, 400, "Request_BadRequest"),
        ({"deviceId": str(uuid.uuid4())}, 400, "Request_BadRequest"),
        ({"trustType": "AzureAd"}, 400, "Request_BadRequest"),
        ({"registrationDateTime": "2024-01-01T00:00:00Z"}, 400, "Request_BadRequest"),
        ({"favouriteColour": "blue"}, 400, "Request_BadRequest"),
        ({"accountEnabled": "false"}, 400, "Request_BadRequest"),
        ({"displayName": ""}, 400, "Request_BadRequest"),
        ({"deviceOwnership": "Company"}, 403, "Authorization_RequestDenied"),
        ({"enrollmentProfileName": "x"}, 403, "Authorization_RequestDenied"),
        ({"isRooted": True}, 403, "Authorization_RequestDenied"),
        ({"managementType": "MDM", "accountEnabled": False}, 403, "Authorization_RequestDenied"),
    ],
)
def test_patch_rejections_change_nothing(sb, graph, body, status, code):
    device = first_device(sb, operatingSystem="Windows")
    before = json.dumps(sb.devices, sort_keys=True)
    response = graph.patch(f"/v1.0/devices/{device['id']}", body)
    assert error_of(response) == (status, code)
    assert json.dumps(sb.devices, sort_keys=True) == before


def test_extension_attribute_of_exactly_1024_characters_is_accepted(sb, graph):
    device = first_device(sb, operatingSystem="Windows")
    body = {"extensionAttributes": {"extensionAttribute15": "x" * 1024}}
    assert graph.patch(f"/v1.0/devices/{device['id']}", body).status_code == 204


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_patch_requires_json(sb, graph, content_type):
    device = first_device(sb, operatingSystem="Windows")
    headers = {"Content-Type": content_type} if content_type else {}
    response = graph.call("PATCH", f"/v1.0/devices/{device['id']}", data='{"accountEnabled": false}', headers=headers)
    assert error_of(response) == (400, "BadRequest")
    assert response.json()["error"]["message"].startswith("Unable to read JSON request payload.")


def test_app_only_token_may_only_set_extension_attributes_on_non_windows(sb, graph):
    phone = first_device(sb, operatingSystem="iOS")
    refused = graph.patch(f"/v1.0/devices/{phone['id']}", {"accountEnabled": False})
    assert error_of(refused) == (400, "Request_BadRequest")
    assert refused.json()["error"]["message"] == NON_WINDOWS
    mixed = graph.patch(f"/v1.0/devices/{phone['id']}",
                        {"extensionAttributes": {"extensionAttribute1": "x"}, "displayName": "x"})
    assert mixed.json()["error"]["message"] == NON_WINDOWS
    assert sb.devices[phone["id"]]["extensionAttributes"]["extensionAttribute1"] != "x"
    allowed = graph.patch(f"/v1.0/devices/{phone['id']}", {"extensionAttributes": {"extensionAttribute1": "x"}})
    assert allowed.status_code == 204
    delegated = Graph(sb, sb.issue_token(app=False))
    assert delegated.patch(f"/v1.0/devices/{phone['id']}", {"accountEnabled": False}).status_code == 204
    assert sb.devices[phone["id"]]["accountEnabled"] is False
    windows = first_device(sb, operatingSystem="Windows")
    assert graph.patch(f"/v1.0/devices/{windows['id']}", {"accountEnabled": False}).status_code == 204


@pytest.mark.parametrize("operating_system", ["Windows Server", "windows", "WINDOWS", "Windows10", None, ""])
def test_app_only_rule_takes_only_the_value_windows_as_windows(sb, graph, operating_system):
    # Graph's page names one value ("where the operatingSystem property is not Windows"); the emulator reads it
    # literally, so every other spelling, and no value at all, is refused as Graph may refuse it.
    device = first_device(sb, operatingSystem="Windows", accountEnabled=True)
    with sb.lock:
        sb.devices[device["id"]]["operatingSystem"] = operating_system
    refused = graph.patch(f"/v1.0/devices/{device['id']}", {"accountEnabled": False})
    assert error_of(refused) == (400, "Request_BadRequest")
    assert refused.json()["error"]["message"] == NON_WINDOWS
    assert sb.devices[device["id"]]["accountEnabled"] is True
    tag = graph.patch(f"/v1.0/devices/{device['id']}", {"extensionAttributes": {"extensionAttribute2": "x"}})
    assert tag.status_code == 204


def test_delete_then_delete_again(sb, graph):
    owner_id, owned = next((user_id, ids) for user_id, ids in sb.user_devices.items() if ids)
    device = sb.devices[owned[0]]
    first = graph.call("DELETE", f"/v1.0/devices(deviceId='{device['deviceId']}')")
    assert (first.status_code, first.content) == (204, b"")
    assert device["id"] not in sb.devices and device["id"] not in sb.user_devices[owner_id]
    again = graph.call("DELETE", f"/v1.0/devices/{device['id']}")
    assert error_of(again) == (404, "Request_ResourceNotFound")
    assert graph.get(f"/v1.0/devices/{device['id']}").status_code == 404


# beta: /users/{id|upn}/devices and /me/devices (the "Update devices" draft page, see sandbox/README.md)


def owner_with_devices(sb, minimum=1):
    user_id = next(user_id for user_id, ids in sb.user_devices.items() if len(ids) >= minimum)
    return sb.users[user_id], sb.user_devices[user_id]


def test_beta_user_devices_by_id_and_upn(sb, graph):
    user, owned = owner_with_devices(sb)
    for reference in (user["id"], user["userPrincipalName"]):
        listed = graph.get(f"/beta/users/{reference}/devices")
        assert listed.status_code == 200
        body = listed.json()
        assert body["@odata.context"] == f"{sb.url}/beta/$metadata#users('{user['id']}')/devices"
        assert sorted(item["id"] for item in body["value"]) == sorted(owned)
        item = body["value"][0]
        assert {"name", "manufacturer", "model", "kind", "status", "platform"} <= set(item)
        assert "Name" not in item  # camelCase in responses
    one = graph.get(f"/beta/users/{user['userPrincipalName']}/devices/{owned[0]}")
    assert one.status_code == 200 and one.json()["id"] == owned[0]
    selected = graph.get(f"/beta/users/{user['id']}/devices/{owned[0]}", params={"$select": "id,kind"}).json()
    assert set(selected) == {"@odata.context", "id", "kind"}
    stranger = next(device_id for device_id in sb.devices if device_id not in owned)
    assert error_of(graph.get(f"/beta/users/{user['id']}/devices/{stranger}")) == (404, "Request_ResourceNotFound")
    assert graph.get("/beta/users/nobody@fleetguard.onmicrosoft.com/devices").status_code == 404
    assert error_of(graph.get(f"/v1.0/users/{user['id']}/devices")) == (400, "BadRequest")


def test_beta_user_device_patch_returns_200_with_the_object(sb, graph):
    user, owned = owner_with_devices(sb)
    device_id = next((d for d in owned if sb.devices[d]["operatingSystem"] == "Windows"), owned[0])
    body = {"name": "Ana's work laptop", "Status": "Online", "kind": "Laptop",
            "extensionAttributes": {"extensionAttribute2": "CC-9000"}}
    response = graph.patch(f"/beta/users/{user['userPrincipalName']}/devices/{device_id}", body)
    assert response.status_code == 200
    updated = response.json()
    assert updated["@odata.context"] == f"{sb.url}/beta/$metadata#users('{user['id']}')/devices/$entity"
    assert (updated["id"], updated["name"], updated["status"]) == (device_id, "Ana's work laptop", "Online")
    assert updated["extensionAttributes"]["extensionAttribute2"] == "CC-9000"
    assert sb.devices[device_id]["status"] == "Online"
    read_only = graph.patch(f"/beta/users/{user['id']}/devices/{device_id}", {"trustType": "AzureAd"})
    assert error_of(read_only) == (400, "Request_BadRequest")
    # the draft page patches the collection itself: the body's id names the device
    collection = graph.patch(f"/beta/users/{user['id']}/devices", {"id": device_id, "platform": "Windows"})
    assert collection.status_code == 200 and collection.json()["platform"] == "Windows"


def test_beta_user_device_delete_removes_it_from_the_directory(sb, graph):
    user, owned = owner_with_devices(sb)
    device_id = owned[0]
    stranger = next(other for other in sb.devices if other not in owned)
    assert error_of(graph.call("DELETE", f"/beta/users/{user['id']}/devices/{stranger}")) == (
        404, "Request_ResourceNotFound")
    assert graph.call("DELETE", f"/beta/users/{user['userPrincipalName']}/devices/{device_id}").status_code == 204
    assert device_id not in sb.devices and device_id not in sb.user_devices[user["id"]]
    assert error_of(graph.call("DELETE", f"/beta/users/{user['id']}/devices/{device_id}")) == (
        404, "Request_ResourceNotFound")


def test_me_devices_need_a_delegated_token(sb, graph):
    user, owned = owner_with_devices(sb)
    app_only = graph.get("/beta/me/devices")
    assert error_of(app_only) == (400, "BadRequest")
    assert app_only.json()["error"]["message"] == "/me request is only valid with delegated authentication flow."
    delegated = Graph(sb, sb.issue_token(app=False, user=user["userPrincipalName"]))
    listed = delegated.get("/beta/me/devices")
    assert sorted(item["id"] for item in listed.json()["value"]) == sorted(owned)
    patched = delegated.patch(f"/beta/me/devices/{owned[0]}", {"Name": "renamed"})
    assert patched.status_code == 200 and patched.json()["name"] == "renamed"
    assert delegated.get(f"/beta/me/devices/{owned[0]}").json()["name"] == "renamed"


# $batch


def test_batch_dispatches_items_and_answers_out_of_order(sb, graph):
    windows = [d for d in sb.devices.values() if d["operatingSystem"] == "Windows"][:3]
    items = [{"id": "read", "method": "GET", "url": f"/devices/{windows[0]['id']}?$select=id,displayName"}]
    items += [{"id": f"w{n}", "method": "PATCH", "url": f"/devices/{device['id']}",
               "headers": {"Content-Type": "application/json"},
               "body": {"extensionAttributes": {"extensionAttribute5": f"batch-{n}"}}}
              for n, device in enumerate(windows)]
    items.append({"id": "count", "method": "GET", "url": "/devices/$count", "headers": {"ConsistencyLevel": "eventual"}})
    response = graph.batch(items)
    assert response.status_code == 200
    answers = response.json()["responses"]
    assert [answer["id"] for answer in answers] != [item["id"] for item in items]
    by_id = {answer["id"]: answer for answer in answers}
    assert by_id["read"]["status"] == 200 and by_id["read"]["body"]["displayName"] == windows[0]["displayName"]
    assert all(by_id[f"w{n}"]["status"] == 204 and "body" not in by_id[f"w{n}"] for n in range(3))
    assert base64.b64decode(by_id["count"]["body"]) == b"50"
    assert all(sb.devices[d["id"]]["extensionAttributes"]["extensionAttribute5"] == f"batch-{n}"
               for n, d in enumerate(windows))
    patches = sb.wire.entries(method="PATCH")
    assert [entry["batch_item"] for entry in patches] == ["w0", "w1", "w2"]
    assert patches[0]["path"] == f"/v1.0/devices/{windows[0]['id']}"
    assert sb.wire.entries(method="POST")[-1]["batch_item"] is None


def test_batch_limits_and_malformed_batches(sb, graph):
    device = first_device(sb)
    read = {"method": "GET", "url": f"/devices/{device['id']}"}
    too_many = graph.batch([{"id": str(n), **read} for n in range(21)])
    assert error_of(too_many) == (400, "BadRequest") and "20" in too_many.json()["error"]["message"]
    assert graph.batch([{"id": str(n), **read} for n in range(20)]).status_code == 200
    duplicate = graph.batch([{"id": "a", **read}, {"id": "A", **read}])
    assert error_of(duplicate) == (400, "BadRequest")
    assert duplicate.json()["error"]["message"] == "Request Id A has to be unique in a batch."
    assert graph.batch([{"id": "1", **read, "dependsOn": ["9"]}]).status_code == 400
    assert graph.batch([{"id": "1", "method": "GET"}]).status_code == 400
    assert graph.batch([]).status_code == 400


def test_batch_item_errors_and_failed_dependencies(sb, graph):
    device = first_device(sb, operatingSystem="Windows")
    items = [
        {"id": "1", "method": "PATCH", "url": f"/devices/{device['id']}", "body": {"accountEnabled": False}},
        {"id": "2", "method": "GET", "url": f"/devices/{device['id']}", "dependsOn": ["1"]},
        {"id": "3", "method": "GET", "url": f"/devices/{uuid.uuid4()}"},
        {"id": "4", "method": "GET", "url": "/devices?$select=id&$top=1", "dependsOn": ["3"]},
        {"id": "5", "method": "GET", "url": f"/devices/{device['id']}?$select=id"},
        {"id": "6", "method": "GET", "url": "https://graph.microsoft.com/v1.0/devices"},
    ]
    answers = {answer["id"]: answer for answer in graph.batch(items).json()["responses"]}
    assert answers["1"]["status"] == 400
    assert answers["1"]["body"]["error"]["message"] == "Write request id : 1 does not contain Content-Type header or body."
    assert (answers["2"]["status"], answers["3"]["status"], answers["4"]["status"]) == (424, 404, 424)
    assert answers["5"]["status"] == 200 and answers["6"]["status"] == 400
    assert sb.devices[device["id"]]["accountEnabled"] == device["accountEnabled"]


def test_batch_items_are_throttled_one_by_one():
    with GraphSandbox(devices=20, throttling=True, write_limits={"app": (3, 5.0)}) as sandbox:
        client = Graph(sandbox)
        windows = [d for d in sandbox.devices.values() if d["operatingSystem"] == "Windows"][:5]
        items = [{"id": str(n), "method": "PATCH", "url": f"/devices/{d['id']}",
                  "headers": {"Content-Type": "application/json"}, "body": {"accountEnabled": True}}
                 for n, d in enumerate(windows)]
        response = client.batch(items)
        assert response.status_code == 200
        answers = {answer["id"]: answer for answer in response.json()["responses"]}
        assert [answers[str(n)]["status"] for n in range(5)] == [204, 204, 204, 429, 429]
        throttled = answers["3"]
        assert int(throttled["headers"]["Retry-After"]) >= 1
        assert throttled["headers"]["x-ms-throttle-information"] == "WriteLimitExceeded"
        assert throttled["body"]["error"]["code"] == "TooManyRequests"


# throttling


def test_device_writes_are_throttled_per_app_and_per_user():
    limits = {"app": (5, 1.0), "user": (3, 1.0)}
    with GraphSandbox(devices=20, throttling=True, write_limits=limits) as sandbox:
        app = Graph(sandbox)
        device = first_device(sandbox, operatingSystem="Windows")
        path = f"/v1.0/devices/{device['id']}"
        responses = [app.patch(path, {"displayName": f"FG-T-{n}"}) for n in range(6)]
        assert [response.status_code for response in responses] == [204] * 5 + [429]
        assert "x-ms-throttle-limit-percentage" not in responses[2].headers
        assert responses[3].headers["x-ms-throttle-limit-percentage"] == "0.8"  # above 80 % of the limit
        throttled = app.patch(path, {"displayName": "FG-THROTTLED"})
        assert error_of(throttled) == (429, "TooManyRequests")
        assert throttled.json()["error"]["message"] == "Too many requests."
        assert re.fullmatch(r"[1-9]\d*", throttled.headers["Retry-After"])
        assert throttled.headers["x-ms-throttle-scope"] == (
            f"Tenant_Application/ReadWrite/{sandbox.client_id}/{sandbox.tenant_id}")
        assert throttled.headers["x-ms-throttle-information"] == "WriteLimitExceeded"
        assert sandbox.devices[device["id"]]["displayName"] == "FG-T-4"
        assert app.get(path).status_code == 200  # reads are not write-limited
        user = Graph(sandbox, sandbox.issue_token(app=False))
        assert [user.patch(path, {"accountEnabled": True}).status_code for _attempt in range(4)] == [204, 204, 204, 429]
        time.sleep(1.05)
        assert app.patch(path, {"displayName": "FG-AGAIN"}).status_code == 204


def test_write_limit_scale_and_switch_off():
    scaled = GraphSandbox(devices=1, write_limit_scale=0.01)
    assert (scaled.rate_limiter.limit_for("app"), scaled.rate_limiter.window_for("app")) == (30, 150.0)
    assert scaled.rate_limiter.limit_for("user") == 1
    with GraphSandbox(devices=5, throttling=False, write_limits={"app": (1, 10.0)}) as sandbox:
        client = Graph(sandbox)
        device = first_device(sandbox, operatingSystem="Windows")
        responses = [client.patch(f"/v1.0/devices/{device['id']}", {"accountEnabled": True}) for _attempt in range(4)]
        assert {response.status_code for response in responses} == {204}


# faults


def test_status_faults_are_graph_shaped(sb, graph):
    device = first_device(sb, operatingSystem="Windows")
    graph.fetch_token()
    sb.faults.add(action="status", status=429, retry_after=3, match={"method": "PATCH"})
    sb.faults.add(action="status", status=503, match={"method": "GET"})
    sb.faults.add(action="status", status=500, match={"method": "GET"})
    throttled = graph.patch(f"/v1.0/devices/{device['id']}", {"accountEnabled": False})
    assert error_of(throttled) == (429, "TooManyRequests") and throttled.headers["Retry-After"] == "3"
    assert error_of(graph.get(f"/v1.0/devices/{device['id']}")) == (503, "serviceNotAvailable")
    assert error_of(graph.get(f"/v1.0/devices/{device['id']}")) == (500, "InternalServerError")
    assert graph.get(f"/v1.0/devices/{device['id']}").status_code == 200
    assert sb.devices[device["id"]]["accountEnabled"] == device["accountEnabled"]
    sb.faults.add(action="status", status=503, retry_after=2, match={"path_regex": "oauth2"})
    token_fault = requests.post(f"{sb.url}/{sb.tenant_id}/oauth2/v2.0/token", data={})
    assert token_fault.status_code == 503 and token_fault.json()["error"] == "temporarily_unavailable"
    assert token_fault.headers["Retry-After"] == "2"


def test_reset_faults_and_latency(sb, graph):
    device = first_device(sb, operatingSystem="Windows")
    path = f"/v1.0/devices/{device['id']}"
    graph.fetch_token()
    sb.faults.add(action="reset", match={"method": "PATCH"})
    with pytest.raises(requests.exceptions.ConnectionError):
        graph.patch(path, {"displayName": "FG-LOST"})
    assert sb.devices[device["id"]]["displayName"] == device["displayName"]
    sb.faults.add(action="reset_after_apply", match={"method": "PATCH"})
    with pytest.raises(requests.exceptions.ConnectionError):
        graph.patch(path, {"displayName": "FG-APPLIED"})
    assert sb.devices[device["id"]]["displayName"] == "FG-APPLIED"
    sb.faults.add(action="latency", seconds=0.2, match={"method": "GET"})
    started = time.monotonic()
    assert graph.get(path).status_code == 200
    assert time.monotonic() - started >= 0.2


def test_expire_tokens_fault(sb, graph):
    old = graph.fetch_token()
    sb.faults.add(action="expire_tokens", match={"method": "GET"})
    expired = graph.get("/v1.0/devices")
    assert error_of(expired) == (401, "InvalidAuthenticationToken")
    assert sb.wire.entries()[-1]["fault"] == "expire_tokens"
    assert graph.fetch_token() != old
    assert graph.get("/v1.0/devices").status_code == 200


def test_faults_can_target_batch_items(sb, graph):
    windows = [d for d in sb.devices.values() if d["operatingSystem"] == "Windows"][:3]
    items = [{"id": str(n), "method": "PATCH", "url": f"/devices/{d['id']}",
              "headers": {"Content-Type": "application/json"}, "body": {"displayName": f"FG-B-{n}"}}
             for n, d in enumerate(windows)]
    graph.fetch_token()
    sb.faults.add(action="status", status=503, retry_after=4, match={"batch_item": "1"})
    answers = {a["id"]: a for a in graph.batch(items).json()["responses"]}
    assert [answers[str(n)]["status"] for n in range(3)] == [204, 503, 204]
    assert answers["1"]["headers"]["Retry-After"] == "4"
    assert answers["1"]["body"]["error"]["code"] == "serviceNotAvailable"
    assert sb.devices[windows[1]["id"]]["displayName"] == windows[1]["displayName"]

    sb.faults.add(action="status", status=500, match={"method": "PATCH", "batch_item": False})
    assert graph.batch(items).status_code == 200  # top-level-only rule leaves the items alone
    assert graph.patch(f"/v1.0/devices/{windows[0]['id']}", {"accountEnabled": True}).status_code == 500

    sb.faults.add(action="reset", match={"method": "PATCH", "batch_item": True}, skip=1)
    with pytest.raises(requests.exceptions.ConnectionError):
        graph.batch([{**item, "body": {"displayName": f"FG-R-{n}"}} for n, item in enumerate(items)])
    names_after = [sb.devices[d["id"]]["displayName"] for d in windows]
    assert names_after == ["FG-R-0", "FG-B-1", "FG-B-2"]  # the first item ran, the reset one and the rest did not


# path safety


@pytest.mark.parametrize(
    "suffix",
    [
        "{first}%2F..%2F{second}",
        "{first}/../{second}",
        "..",
        "%2e%2e/{second}",
        "{second}%3F$select=id",
        "{second}%00",
        "{first}/{second}",
        " {second}",
        "",
        "$batch",
        "(deviceId='{second_device_id}')/../{second}",
        "(deviceId='x')%2F..%2F{second}",
    ],
)
def test_odd_device_keys_never_reach_another_route(sb, graph, suffix):
    first, second = list(sb.devices.values())[:2]
    token = graph.fetch_token()
    suffix = suffix.format(first=first["id"], second=second["id"], second_device_id=second["deviceId"])
    path = "/v1.0/devices" + ("" if suffix.startswith("(") else "/") + suffix
    before = json.dumps(sb.devices, sort_keys=True)
    for method, body in (("GET", None), ("PATCH", {"displayName": "HIJACKED"}), ("DELETE", None)):
        status, payload = raw_request(sb, method, path.replace(" ", "%20"), token, body)
        assert status in (400, 404, 405), (method, path, status)
        assert json.loads(payload)["error"]["code"], (method, path)
    assert json.dumps(sb.devices, sort_keys=True) == before


# control endpoints and Python API


def test_control_endpoints(sb, graph):
    base = sb.url + "/_sandbox"
    graph.get("/v1.0/devices?$top=1")
    wire = requests.get(f"{base}/wire").json()
    assert [entry["method"] for entry in wire["entries"]] == ["POST", "GET"]
    assert requests.delete(f"{base}/wire").json() == {"cleared": 2}
    rule = {"action": "status", "status": 502, "match": {"batch_item": True}}
    added = requests.post(f"{base}/faults", json=rule).json()["faults"]
    assert added[0]["match"] == {"batch_item": True}
    assert requests.post(f"{base}/faults", json={"action": "status", "status": 500,
                                                 "match": {"colour": "red"}}).status_code == 400
    assert requests.delete(f"{base}/faults").json() == {"cleared": 1}

    duplicate = requests.post(f"{base}/devices", json={"displayName": "FG-WS-0001"}).json()
    state = requests.get(f"{base}/state").json()
    assert state["count"] == 51 and duplicate["id"] in {device["id"] for device in state["devices"]}
    assert sum(device["displayName"] == "FG-WS-0001" for device in state["devices"]) == 2
    assert state["users"] and state["user_devices"]

    user = state["users"][0]
    delegated = requests.post(f"{base}/tokens", json={"app": False, "user": user["id"]}).json()["access_token"]
    me = requests.get(f"{sb.url}/beta/me/devices", headers={"Authorization": f"Bearer {delegated}"})
    assert me.status_code == 200
    assert requests.post(f"{base}/expire_tokens").json()["expired"] == 2
    assert graph.get("/v1.0/devices").status_code == 401

    reset = requests.post(f"{base}/reset", json={"seed": 2, "throttling": True}).json()
    assert reset == {"seed": 2, "devices": 50, "throttling": True, "write_limit_scale": 1.0}
    assert sb.devices == GraphSandbox(devices=50, seed=2).devices


def test_add_device_python_api(sb):
    user = next(iter(sb.users.values()))
    device = sb.add_device(displayName="Jim's Pixel", operatingSystem="Android", registered_user=user["userPrincipalName"],
                           extensionAttributes={"extensionAttribute3": "Berlin"})
    stored = sb.devices[device["id"]]
    assert stored["extensionAttributes"]["extensionAttribute3"] == "Berlin"
    assert len(stored["extensionAttributes"]) == 15 and stored["trustType"] == "Workplace"
    assert device["id"] in sb.user_devices[user["id"]]
    with pytest.raises(ValueError):
        sb.add_device(deviceId=device["deviceId"])


def test_unknown_paths_and_methods(sb, graph):
    assert error_of(graph.get("/v2.0/devices")) == (400, "BadRequest")
    unknown = graph.get("/v1.0/gadgets")
    assert unknown.json()["error"]["message"] == "Resource not found for the segment 'gadgets'."
    assert error_of(graph.call("PUT", f"/v1.0/devices/{first_device(sb)['id']}", json={})) == (405, "Request_BadRequest")


# command line


def start_cli(*args):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "sandbox", *args], cwd=REPO_ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    if not selector.select(timeout=10):
        process.kill()
        pytest.fail("sandbox did not print its ready line")
    return process, json.loads(process.stdout.readline())


def stop_cli(process):
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=5)
    assert process.returncode == 0, stderr
    return stdout, stderr


def graph_token(ready):
    response = requests.post(f"{ready['msgraph']}/{ready['tenant_id']}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": ready["client_id"], "client_secret": ready["client_secret"],
        "scope": "https://graph.microsoft.com/.default"})
    return response.json()["access_token"]


def test_cli_msgraph(tmp_path):
    ready_file = tmp_path / "ready.json"
    process, ready = start_cli("msgraph", "--port", "0", "--devices", "7", "--seed", "3", "--no-throttling",
                               "--ready-file", str(ready_file))
    try:
        assert set(ready) == {"msgraph", "tenant_id", "client_id", "client_secret"}
        assert ready["client_secret"] == "sandbox-graph-secret"
        assert json.loads(ready_file.read_text()) == ready
        listed = requests.get(f"{ready['msgraph']}/v1.0/devices",
                              headers={"Authorization": f"Bearer {graph_token(ready)}"}).json()
        assert len(listed["value"]) == 7
    finally:
        stdout, stderr = stop_cli(process)
    assert stdout == "" and stderr == ""
    assert not ready_file.exists()


def test_cli_all_serves_both_emulators():
    process, ready = start_cli("all", "--feishu-port", "0", "--msgraph-port", "0", "--records", "4", "--devices", "6")
    try:
        assert {"feishu", "app_id", "app_secret", "msgraph", "tenant_id", "client_id", "client_secret"} == set(ready)
        assert ready["feishu"] != ready["msgraph"]
        feishu = requests.post(f"{ready['feishu']}/open-apis/auth/v3/tenant_access_token/internal",
                               json={"app_id": ready["app_id"], "app_secret": ready["app_secret"]}).json()
        assert feishu["code"] == 0
        listed = requests.get(f"{ready['msgraph']}/beta/devices",
                              headers={"Authorization": f"Bearer {graph_token(ready)}"}).json()
        assert len(listed["value"]) == 6
    finally:
        stop_cli(process)


# workload identity federation: a federated client assertion from the sandbox's identity provider


def federated_token_request(sb, assertion, client_id=None):
    return requests.post(f"{sb.url}/{sb.tenant_id}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": client_id or sb.client_id,
        "scope": "https://graph.microsoft.com/.default", "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    })


def jwt_part(token, index):
    part = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_a_federated_token_from_a_trusted_issuer_gets_an_app_token(sb, graph, tmp_path):
    token_file = tmp_path / "azure-identity-token"
    token = sb.mint_federated_token(path=token_file)
    assert token_file.read_text() == token and (token_file.stat().st_mode & 0o777) == 0o600
    header, claims = jwt_part(token, 0), jwt_part(token, 1)
    assert header["alg"] == "RS256" and header["kid"] and "x5t" not in header
    assert (claims["iss"], claims["sub"], claims["aud"]) == (sb.workload_issuer, sb.workload_subject,
                                                             ["api://AzureADTokenExchange"])
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["kubernetes.io"] == {"namespace": "awx", "serviceaccount": {"name": "awx-ee"}}
    response = federated_token_request(sb, token)
    assert response.status_code == 200, response.text
    graph.token = response.json()["access_token"]
    assert jwt_part(graph.token, 1)["appid"] == sb.client_id
    assert graph.get("/v1.0/devices?$top=1").status_code == 200
    assert sb.workload_identity_environment(token_file) == {
        "AZURE_FEDERATED_TOKEN_FILE": str(token_file), "AZURE_CLIENT_ID": sb.client_id,
        "AZURE_TENANT_ID": sb.tenant_id, "AZURE_AUTHORITY_HOST": sb.url}


@pytest.mark.parametrize("minted, status, error, code, says", [
    ({"issuer": "https://oidc.other-cluster.test/"}, 401, "invalid_client", 700211,
     "presented assertion issuer 'https://oidc.other-cluster.test/'"),
    ({"subject": "system:serviceaccount:awx:default"}, 401, "invalid_client", 700213,
     "presented assertion subject 'system:serviceaccount:awx:default'"),
    ({"subject": "system:serviceaccount:AWX:awx-ee"}, 401, "invalid_client", 7002138,
     "matches with case-insensitive comparison, but not with case-sensitive comparison"),
    ({"audience": "api://other-audience"}, 400, "invalid_request", 70021,
     "Assertion Audience: 'api://other-audience'"),
    ({"issued_at": -7200, "lifetime": 3600}, 401, "invalid_client", 700024, "not within its valid time range"),
    ({"issued_at": 900}, 401, "invalid_client", 700024, "not within its valid time range"),
])
def test_federated_assertions_that_match_no_credential_get_entras_codes(sb, minted, status, error, code, says):
    if "issued_at" in minted:
        minted = dict(minted, issued_at=time.time() + minted["issued_at"])
    response = federated_token_request(sb, sb.mint_federated_token(**minted))
    assert response.status_code == status
    body = response.json()
    assert (body["error"], body["error_codes"]) == (error, [code])
    first_line = body["error_description"].splitlines()[0]
    assert first_line.startswith(f"AADSTS{code}: ") and says in first_line
    assert f"Trace ID: {body['trace_id']}" in body["error_description"]
    assert sb.wire.entries()[-1]["api_code"] == f"AADSTS{code}"


def test_a_forged_or_foreign_federated_token_fails_signature_validation(sb):
    from sandbox.msgraph_auth import IssuerKey, federated_token_claims

    token = sb.mint_federated_token()
    claims = jwt_part(token, 1)
    claims["sub"] = "system:serviceaccount:kube-system:admin"
    header_part, _claims_part, signature = token.split(".")
    forged = f"{header_part}.{b64url(json.dumps(claims).encode())}.{signature}"
    foreign = IssuerKey().sign(federated_token_claims(sb.workload_issuer, sb.workload_subject,
                                                      "api://AzureADTokenExchange", time.time(), 600))
    for assertion, reason in ((forged, "failed signature validation"), (foreign, "The key was not found")):
        response = federated_token_request(sb, assertion)
        assert (response.status_code, response.json()["error_codes"]) == (401, [700027])
        assert reason in response.json()["error_description"]
    assert federated_token_request(sb, "eyJub3Q.a.jwt").status_code == 400


def test_federated_credentials_and_tokens_through_the_control_endpoints(sb, tmp_path):
    listed = requests.get(f"{sb.url}/_sandbox/federated_credentials").json()["federated_credentials"]
    assert listed == [{"name": "awx-execution-nodes", "issuer": sb.workload_issuer, "subject": sb.workload_subject,
                       "audiences": ["api://AzureADTokenExchange"]}]
    subject = "system:serviceaccount:automation:controller"
    added = requests.post(f"{sb.url}/_sandbox/federated_credentials", json={"subject": subject, "name": "ocp"})
    assert added.json() == {"name": "ocp", "issuer": sb.workload_issuer, "subject": subject,
                            "audiences": ["api://AzureADTokenExchange"]}
    token_file = tmp_path / "token"
    minted = requests.post(f"{sb.url}/_sandbox/federated_tokens",
                           json={"subject": subject, "lifetime": 600, "path": str(token_file)}).json()
    assert minted["token"] == token_file.read_text() and minted["subject"] == subject
    assert minted["issuer"] == sb.workload_issuer and minted["expires_on"] > time.time()
    assert federated_token_request(sb, token_file.read_text()).status_code == 200
    assert requests.post(f"{sb.url}/_sandbox/federated_tokens", json={"sub": "x"}).status_code == 400
    assert requests.post(f"{sb.url}/_sandbox/federated_credentials", json={"issuer": "x"}).status_code == 400


def test_a_federated_token_for_another_app_is_still_refused_by_client_id(sb):
    response = federated_token_request(sb, sb.mint_federated_token(), client_id=str(uuid.uuid4()))
    assert (response.status_code, response.json()["error_codes"]) == (400, [700016])


# managed identity: the instance metadata service (IMDS) form and the App Service form

IMDS_PATH = "/metadata/identity/oauth2/token"


def imds(sb, metadata="true", **params):
    params = {"api-version": "2018-02-01", "resource": "https://graph.microsoft.com", **params}
    headers = {"Metadata": metadata} if metadata is not None else {}
    return requests.get(sb.url + IMDS_PATH, params={k: v for k, v in params.items() if v is not None},
                        headers=headers)


def app_service(sb, header=None, **params):
    params = {"api-version": "2019-08-01", "resource": "https://graph.microsoft.com", **params}
    return requests.get(sb.identity_endpoint, params={k: v for k, v in params.items() if v is not None},
                        headers={"X-IDENTITY-HEADER": sb.identity_header if header is None else header})


def test_imds_answers_a_graph_app_token_with_numbers_as_strings(sb, graph):
    before = int(time.time())
    response = imds(sb)
    assert response.status_code == 200 and response.headers["x-ms-request-id"]
    body = response.json()
    assert set(body) == {"access_token", "client_id", "expires_in", "expires_on", "ext_expires_in", "not_before",
                         "resource", "token_type"}
    assert all(isinstance(body[name], str) for name in ("expires_in", "expires_on", "ext_expires_in", "not_before"))
    assert int(body["expires_on"]) - int(body["not_before"]) == int(body["expires_in"]) == 86399
    assert before <= int(body["not_before"]) <= time.time()
    assert (body["resource"], body["token_type"]) == ("https://graph.microsoft.com", "Bearer")
    assert body["client_id"] == sb.system_assigned_identity["client_id"]
    claims = jwt_part(body["access_token"], 1)
    assert (claims["appid"], claims["idtyp"], claims["roles"]) == (body["client_id"], "app", ["Device.ReadWrite.All"])
    graph.token = body["access_token"]
    device = first_device(sb, operatingSystem="Windows")
    assert graph.get(f"/v1.0/devices/{device['id']}").status_code == 200
    assert graph.patch(f"/v1.0/devices/{device['id']}", {"accountEnabled": False}).status_code == 204
    assert imds(sb, resource=sb.url + "/").status_code == 200  # the sandbox's own root is Graph too
    assert sb.managed_identity_environment("imds") == {"AZURE_POD_IDENTITY_AUTHORITY_HOST": sb.url}


def test_managed_identity_tokens_carry_the_apps_roles(sb, graph):
    sb.app_roles = ["Device.Read.All"]
    graph.token = imds(sb).json()["access_token"]
    device = first_device(sb, operatingSystem="Windows")
    assert graph.get(f"/v1.0/devices/{device['id']}").status_code == 200
    assert error_of(graph.patch(f"/v1.0/devices/{device['id']}", {"accountEnabled": False})) == (
        403, "Authorization_RequestDenied")


@pytest.mark.parametrize("metadata, params, status, body", [
    (None, {}, 400, {"error": "invalid_request", "error_description": "Required metadata header not specified"}),
    ("True", {}, 400, {"error": "invalid_request", "error_description": "Required metadata header not specified"}),
    ("true", {"resource": None}, 400,
     {"error": "invalid_request", "error_description": "Required audience parameter not specified"}),
    ("true", {"client_id": "11111111-2222-3333-4444-555555555555"}, 400,
     {"error": "invalid_request", "error_description": "Identity not found"}),
])
def test_imds_refusals(sb, metadata, params, status, body):
    response = imds(sb, metadata=metadata, **params)
    assert (response.status_code, response.json()) == (status, body)
    assert sb.wire.entries()[-1]["api_code"] == "invalid_request"


def test_imds_without_api_version_or_for_another_resource(sb):
    no_version = imds(sb, **{"api-version": None})
    assert no_version.status_code == 400
    assert no_version.json()["error"].startswith("Bad request. api-version was not specified in the request.")
    assert no_version.json()["newest-versions"]
    other = imds(sb, resource="https://management.azure.com/")
    assert (other.status_code, other.json()["error"]) == (400, "invalid_resource")
    assert other.json()["error_description"].startswith(
        "AADSTS500011: The resource principal named https://management.azure.com/ was not found")
    assert imds(sb, **{"client_id": ["a", "b"]}).status_code == 400


def test_a_user_assigned_identity_is_chosen_by_client_id_object_id_or_resource_id(sb):
    user = sb.user_assigned_identities[0]
    for name, value in (("client_id", user["client_id"]), ("object_id", user["principal_id"]),
                        ("msi_res_id", user["resource_id"])):
        body = imds(sb, **{name: value}).json()
        assert body["client_id"] == user["client_id"], name
        assert jwt_part(body["access_token"], 1)["appid"] == user["client_id"]
    both = imds(sb, client_id=user["client_id"], object_id=user["principal_id"])
    assert both.status_code == 400
    assert app_service(sb, client_id=user["client_id"]).json()["client_id"] == user["client_id"]
    assert app_service(sb, principal_id=user["principal_id"]).json()["client_id"] == user["client_id"]


def test_without_a_system_assigned_identity_imds_needs_one_user_assigned_identity(sb):
    sb.system_assigned_identity = None
    only = sb.user_assigned_identities[0]
    assert imds(sb).json()["client_id"] == only["client_id"]
    second = sb.add_user_assigned_identity("fleetguard-audit")
    assert second["resource_id"].endswith("/userAssignedIdentities/fleetguard-audit")
    several = imds(sb)
    assert several.status_code == 400
    assert several.json()["error_description"].startswith("Multiple user assigned identities exist")
    assert imds(sb, client_id=second["client_id"]).json()["client_id"] == second["client_id"]
    sb.user_assigned_identities = []
    assert imds(sb).json() == {"error": "invalid_request", "error_description": "Identity not found"}


def test_the_app_service_form_needs_its_header_and_answers_expires_on(sb, graph):
    response = app_service(sb)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "expires_on", "resource", "token_type", "client_id"}
    assert isinstance(body["expires_on"], str) and 86390 < int(body["expires_on"]) - time.time() <= 86399
    assert body["client_id"] == sb.system_assigned_identity["client_id"]
    graph.token = body["access_token"]
    assert graph.get("/v1.0/devices?$top=1").status_code == 200
    for header in ("", "not-the-header"):
        refused = app_service(sb, header=header)
        assert refused.status_code == 401
        assert refused.json()["statusCode"] == 401 and refused.headers["X-CORRELATION-ID"] == refused.json()[
            "correlationId"]
    unknown = app_service(sb, client_id=str(uuid.uuid4()))
    assert (unknown.status_code, unknown.json()["message"]) == (400, "Unable to load the proper Managed Identity.")
    assert app_service(sb, **{"api-version": "2017-09-01"}).status_code == 400
    assert app_service(sb, resource=None).status_code == 400
    assert sb.managed_identity_environment() == {"IDENTITY_ENDPOINT": sb.url + "/msi/token",
                                                 "IDENTITY_HEADER": sb.identity_header}


def test_managed_identities_through_the_control_endpoints(sb):
    info = requests.get(f"{sb.url}/_sandbox/managed_identities").json()
    assert info["identity_endpoint"] == sb.identity_endpoint and info["identity_header"] == sb.identity_header
    assert info["imds_host"] == sb.url and info["system_assigned"] == sb.system_assigned_identity
    added = requests.post(f"{sb.url}/_sandbox/managed_identities", json={"name": "extra", "client_id": "c-1"}).json()
    assert added["client_id"] == "c-1" and imds(sb, client_id="c-1").json()["client_id"] == "c-1"
    assert requests.post(f"{sb.url}/_sandbox/managed_identities", json={}).status_code == 400


def test_faults_on_the_identity_endpoints_answer_in_their_shapes(sb):
    sb.faults.add("status", match={"path_regex": "^/metadata/"}, status=503)
    sb.faults.add("status", match={"path_regex": "^/msi/"}, status=500, message="boom")
    refused = imds(sb)
    assert (refused.status_code, refused.json()["error"]) == (503, "temporarily_unavailable")
    failed = app_service(sb)
    assert (failed.status_code, failed.json()["statusCode"], failed.json()["message"]) == (500, 500, "boom")
    assert imds(sb).status_code == 200 and app_service(sb).status_code == 200


# client-request-id: echoed on every Graph answer and in its error's innerError


def test_the_client_request_id_is_echoed_on_401_faults_and_batch_parts(sb, graph):
    trace = {"client-request-id": "7f6c9a1e-0000-4000-8000-00000000abcd"}
    unauthenticated = requests.get(f"{sb.url}/v1.0/devices", headers=trace)
    assert unauthenticated.headers["client-request-id"] == trace["client-request-id"]
    assert unauthenticated.json()["error"]["innerError"]["client-request-id"] == trace["client-request-id"]
    sb.faults.add("status", match={"method": "GET"}, status=429)
    throttled = graph.get("/v1.0/devices", headers=trace)
    assert throttled.status_code == 429
    inner = throttled.json()["error"]["innerError"]
    assert (inner["client-request-id"], inner["request-id"]) == (trace["client-request-id"],
                                                                 throttled.headers["request-id"])
    batch = graph.call("POST", "/v1.0/$batch", headers=trace, json={"requests": [
        {"id": "1", "method": "GET", "url": f"/devices/{uuid.uuid4()}"}]})
    part = batch.json()["responses"][0]
    assert part["status"] == 404
    assert part["body"]["error"]["innerError"]["client-request-id"] == trace["client-request-id"]
    assert part["body"]["error"]["innerError"]["request-id"] == batch.headers["request-id"]
    token_error = requests.post(f"{sb.url}/{sb.tenant_id}/oauth2/v2.0/token", data={"grant_type": "x"},
                                headers=trace)
    assert token_error.headers["client-request-id"] == trace["client-request-id"]
