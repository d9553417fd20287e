"""Tests of the Feishu device-record sandbox (sandbox/feishu.py, sandbox/server.py)."""

import hashlib
import http.client
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from sandbox import FeishuSandbox
from sandbox.feishu_data import generate_records

REPO_ROOT = Path(__file__).resolve().parents[2]
TOKEN_PATH = "/open-apis/auth/v3/tenant_access_token/internal"
RECORDS = "/open-apis/security_and_compliance/v2/device_records"
FIRST_ID = "7400000000000000001"
SECOND_ID = "7400000000000000002"
STALE_MSG = "The device is not found. Please check the parameter device_record_id and version."


class Client:
    """A requests session that fetches and sends a tenant_access_token."""

    def __init__(self, sandbox):
        self.sandbox = sandbox
        self.session = requests.Session()
        self.token = None

    def fetch_token(self):
        response = self.session.post(
            self.sandbox.url + TOKEN_PATH,
            json={"app_id": self.sandbox.app_id, "app_secret": self.sandbox.app_secret},
        )
        self.token = response.json()["tenant_access_token"]
        return self.token

    def call(self, method, path, **kwargs):
        if self.token is None:
            self.fetch_token()
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return self.session.request(method, self.sandbox.url + path, headers=headers, timeout=5, **kwargs)

    def get_record(self, record_id):
        return self.call("GET", f"{RECORDS}/{record_id}").json()["data"]["device_record"]

    def update(self, record_id, version, ownership=2, status=1):
        body = {"device_ownership": ownership, "device_status": status}
        return self.call("PUT", f"{RECORDS}/{record_id}", params={"version": version}, json=body)


@pytest.fixture
def sb():
    with FeishuSandbox(records=50, seed=1, rate_limits=False) as sandbox:
        yield sandbox


@pytest.fixture
def client(sb):
    client = Client(sb)
    yield client
    client.session.close()


def raw_request(sandbox, method, raw_path, token=None, body=None):
    """Send a request-target byte for byte (requests would normalise dot segments)."""
    connection = http.client.HTTPConnection(sandbox.server.server_name, sandbox.server.server_port, timeout=5)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    payload = None
    if body is not None:
        payload = json.dumps(body)
        headers["Content-Type"] = "application/json"
    try:
        connection.request(method, raw_path, body=payload, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


# token endpoint


def test_token_is_issued_then_reused(sb):
    url = sb.url + TOKEN_PATH
    first = requests.post(url, json={"app_id": "cli_sandbox", "app_secret": "sandbox-secret"})
    assert first.status_code == 200
    body = first.json()
    assert body["code"] == 0 and body["msg"] == "ok" and body["expire"] == 7200
    assert body["tenant_access_token"].startswith("t-")
    assert "data" not in body  # token fields are top-level
    assert first.headers["X-Tt-Logid"]
    again = requests.post(url, json={"app_id": "cli_sandbox", "app_secret": "sandbox-secret"}).json()
    assert again["tenant_access_token"] == body["tenant_access_token"]
    assert 7000 < again["expire"] <= 7200


def test_token_is_reissued_under_30_minutes_and_old_one_keeps_working(sb, client):
    old_token = client.fetch_token()
    started = time.time()
    sb.clock = lambda: started + 7200 - 1700  # 1700 s left: below the 30 min threshold
    new_token = client.fetch_token()
    assert new_token != old_token
    client.token = old_token
    assert client.call("GET", f"{RECORDS}/{FIRST_ID}").json()["code"] == 0
    sb.clock = lambda: started + 7300  # old token past its two hours
    response = client.call("GET", f"{RECORDS}/{FIRST_ID}")
    assert (response.status_code, response.json()["code"]) == (400, 99991663)


def test_token_rejects_wrong_secret_and_missing_fields(sb):
    url = sb.url + TOKEN_PATH
    wrong = requests.post(url, json={"app_id": "cli_sandbox", "app_secret": "nope"})
    assert wrong.status_code == 400
    assert wrong.json()["code"] == 10014 and wrong.json()["msg"] == "app secret invalid"
    missing = requests.post(url, json={"app_id": "cli_sandbox"})
    assert (missing.status_code, missing.json()["code"]) == (400, 10003)


# gateway auth


@pytest.mark.parametrize(
    "authorization, code",
    [
        (None, 99991661),
        ("Bearer ", 99991661),
        ("Bearer abc", 99991671),
        ("Bearer t-unknown", 99991663),
        ("Bearer u-user-token", 99991668),
    ],
)
def test_gateway_auth_errors(sb, authorization, code):
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = requests.get(f"{sb.url}{RECORDS}/{FIRST_ID}", headers=headers)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == code
    assert body["error"]["log_id"] == response.headers["X-Tt-Logid"]


def test_mine_rejects_tenant_token(client):
    response = client.call("GET", f"{RECORDS}/mine")
    assert (response.status_code, response.json()["code"]) == (400, 99991663)


# get / list


def test_generated_records_are_deterministic_and_realistic():
    one, same, other = (FeishuSandbox(records=30, seed=seed) for seed in (7, 7, 8))
    assert one.records == same.records
    assert one.records != other.records
    records = list(one.records.values())
    assert len({record["device_name"] for record in records}) == 30
    assert {record["device_system"] for record in records} == {1, 2, 3, 4, 5, 6}
    for record in records:
        assert len(record["device_record_id"]) == 19 and record["version"] == "0"
        system = record["device_system"]
        if system <= 3:
            assert record["serial_number"].startswith("C02FG") and "android_id" not in record
        else:
            assert "serial_number" not in record  # empty fields are omitted
            assert {4: "android_id", 5: "idfv", 6: "aaid"}[system] in record
        assert "" not in record.values() and [] not in record.values()


def test_lsa_info_has_the_apis_format_and_the_other_fields_keep_their_seeded_values():
    records = generate_records(60, 7)
    lines = [record["lsa_info"] for record in records.values() if "lsa_info" in record]
    assert len(lines) == 15
    line_format = re.compile(r"(\d{19}),(在线|离线),(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d UTC),"
                             r"(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d UTC),(v\d+\.\d+\.\d+)")
    for line in lines:  # e.g. 7522053803906960914,离线,2025/07/09 13:42:42 UTC,2025/07/18 05:09:21 UTC,v1.2.1
        client_id, state, bound, last_online, version = line_format.fullmatch(line).groups()
        assert bound <= last_online  # zero-padded, so text order is time order
    assert {line.split(",")[1] for line in lines} == {"在线", "离线"}
    bound_to_lsa = [record for record in records.values() if "lsa_info" in record]
    assert all(record["device_system"] in (1, 2, 3) for record in bound_to_lsa)  # desktop clients only
    # Tests elsewhere rely on the seeded records: everything but lsa_info is what it was before its format changed.
    stable = {record_id: {name: value for name, value in record.items() if name != "lsa_info"}
              for record_id, record in records.items()}
    digest = hashlib.sha256(json.dumps(stable, sort_keys=True).encode()).hexdigest()
    assert digest == "2ee2c48b147650f86693124c725d960835af6b157e523e92c6087a37475ac266"


def test_get_returns_the_record(sb, client):
    response = client.call("GET", f"{RECORDS}/{FIRST_ID}")
    assert response.status_code == 200
    body = response.json()
    assert body["code"] == 0 and body["msg"] == "success"
    assert body["data"]["device_record"] == sb.records[FIRST_ID]
    assert response.headers["X-Tt-Logid"]
    unknown = client.call("GET", f"{RECORDS}/7400000000000099999")
    assert (unknown.status_code, unknown.json()["code"]) == (400, 1785008)


def test_get_renders_user_ids_by_user_id_type(sb, client):
    open_id = sb.records[FIRST_ID]["latest_user_id"]
    response = client.call("GET", f"{RECORDS}/{FIRST_ID}", params={"user_id_type": "union_id"})
    assert response.json()["data"]["device_record"]["latest_user_id"] == "on_" + open_id[3:]


def test_list_pages_through_all_records_in_id_order(sb, client):
    seen, page_token, pages = [], None, 0
    while True:
        params = {"page_size": 20, **({"page_token": page_token} if page_token else {})}
        data = client.call("GET", RECORDS, params=params).json()["data"]
        seen += [item["device_record_id"] for item in data["items"]]
        pages += 1
        if not data["has_more"]:
            assert "page_token" not in data
            break
        page_token = data["page_token"]
    assert pages == 3
    assert seen == sorted(sb.records, key=int)


def test_list_default_page_size_and_validation(client):
    data = client.call("GET", RECORDS).json()["data"]
    assert len(data["items"]) == 50 and data["has_more"] is False
    for params in ({"page_size": 0}, {"page_size": 101}, {"page_size": "ten"}, {"page_token": "forged"}):
        response = client.call("GET", RECORDS, params=params)
        assert (response.status_code, response.json()["code"]) == (400, 1780101), params


def test_list_filters_are_exact_and_anded(sb, client):
    def listed(**params):
        return client.call("GET", RECORDS, params=params).json()["data"]["items"]

    records = list(sb.records.values())
    androids = listed(os=4)
    assert androids and all(item["device_system"] == 4 for item in androids)
    assert len(androids) == sum(record["device_system"] == 4 for record in records)

    combined = listed(device_status=1, device_ownership=2)
    expected = [r for r in records if r["device_status"] == 1 and r["device_ownership"] == 2]
    assert [item["device_record_id"] for item in combined] == [r["device_record_id"] for r in expected]

    managed = listed(is_managed="true")
    assert managed and all(item["is_managed"] for item in managed)

    target = sb.records[SECOND_ID]
    assert [item["device_record_id"] for item in listed(did=target["dids"][-1])] == [SECOND_ID]
    assert [item["device_record_id"] for item in listed(serial_number="C02FG0002")] == [SECOND_ID]
    assert listed(serial_number="C02FG000") == []  # no prefix/fuzzy matching

    for params in ({"device_ownership": 7}, {"is_managed": "yes"}, {"os": "mac"}):
        response = client.call("GET", RECORDS, params=params)
        assert response.json()["code"] == 1780101, params


# update / delete / create


def test_update_bumps_version_and_stale_version_is_rejected(sb, client):
    before = client.get_record(FIRST_ID)
    response = client.update(FIRST_ID, before["version"], ownership=1, status=2)
    assert response.status_code == 200
    assert response.json() == {"code": 0, "msg": "success", "data": {}}
    after = client.get_record(FIRST_ID)
    assert after["version"] == "1"
    assert (after["device_ownership"], after["device_status"]) == (1, 2)
    assert after["updated_at"] > before["updated_at"]

    stale = client.update(FIRST_ID, before["version"])
    assert stale.status_code == 400
    assert stale.json()["code"] == 1785008 and stale.json()["msg"] == STALE_MSG
    assert client.get_record(FIRST_ID)["version"] == "1"

    unknown = client.update("7400000000000099999", "0")
    assert (unknown.status_code, unknown.json()["msg"]) == (400, STALE_MSG)


@pytest.mark.parametrize(
    "params, body",
    [
        ({"version": "0"}, {"device_status": 1}),
        ({"version": "0"}, {"device_ownership": 1}),
        ({"version": "0"}, {"device_ownership": 3, "device_status": 1}),
        ({"version": "0"}, {"device_ownership": "1", "device_status": 1}),
        ({"version": "0"}, {"device_ownership": True, "device_status": 1}),
        ({}, {"device_ownership": 1, "device_status": 1}),
    ],
)
def test_update_requires_both_fields_and_version(sb, client, params, body):
    response = client.call("PUT", f"{RECORDS}/{FIRST_ID}", params=params, json=body)
    assert (response.status_code, response.json()["code"]) == (400, 1780101)
    assert sb.records[FIRST_ID]["version"] == "0"


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_update_requires_json_content_type(sb, client, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    body = json.dumps({"device_ownership": 1, "device_status": 1})
    response = client.call("PUT", f"{RECORDS}/{FIRST_ID}", params={"version": "0"}, data=body, headers=headers)
    assert (response.status_code, response.json()["code"]) == (400, 1780101)
    assert sb.records[FIRST_ID]["version"] == "0"


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8"])
def test_update_accepts_json_with_or_without_charset(client, content_type):
    body = json.dumps({"device_ownership": 1, "device_status": 1})
    response = client.call(
        "PUT", f"{RECORDS}/{FIRST_ID}", params={"version": "0"}, data=body, headers={"Content-Type": content_type}
    )
    assert response.json()["code"] == 0


def test_delete_then_delete_again(sb, client):
    first = client.call("DELETE", f"{RECORDS}/{FIRST_ID}")
    assert first.json() == {"code": 0, "msg": "success", "data": {}}
    assert FIRST_ID not in sb.records
    again = client.call("DELETE", f"{RECORDS}/{FIRST_ID}")
    assert (again.status_code, again.json()["code"]) == (400, 1785008)
    assert client.call("GET", f"{RECORDS}/{FIRST_ID}").json()["code"] == 1785008


def test_create_validates_and_detects_duplicates(sb, client):
    body = {"device_system": 4, "android_id": "0123456789abcdef", "device_ownership": 2, "device_status": 1}
    created = client.call("POST", RECORDS, json=body).json()
    assert created["code"] == 0
    record = sb.records[created["data"]["device_record_id"]]
    assert record["version"] == "0" and record["device_terminal_type"] == 1 and record["source"] == 1
    assert client.call("POST", RECORDS, json=body).json()["code"] == 1785010
    assert client.call("POST", RECORDS, json={**body, "device_system": 9}).json()["code"] == 1785007
    assert client.call("POST", RECORDS, json={**body, "serial_number": "X1"}).json()["code"] == 1785005
    missing = {key: value for key, value in body.items() if key != "device_status"}
    assert client.call("POST", RECORDS, json=missing).json()["code"] == 1780101


# path safety


@pytest.mark.parametrize(
    "suffix",
    [
        f"{FIRST_ID}%2F..%2F{SECOND_ID}",
        f"{FIRST_ID}/../{SECOND_ID}",
        "..",
        f"..%2F{SECOND_ID}",
        f"{SECOND_ID}%3Fversion=0",
        f"{SECOND_ID}%00",
        f"%37{SECOND_ID[1:]}",  # percent-encoded digit: never decoded
        f"+{SECOND_ID}",
        "",
        "mine%2F..",
    ],
)
def test_odd_record_ids_never_reach_another_record(sb, client, suffix):
    token = client.fetch_token()
    before = json.dumps(sb.records, sort_keys=True)
    path = f"{RECORDS}/{suffix}"
    for method, body in (("GET", None), ("PUT", {"device_ownership": 0, "device_status": 0}), ("DELETE", None)):
        status, answer = raw_request(sb, method, path + ("?version=0" if method == "PUT" else ""), token, body)
        assert (status, answer["code"]) == (400, 1780101), (method, suffix)
    assert json.dumps(sb.records, sort_keys=True) == before


# rate limits


def test_eleventh_update_in_one_second_is_throttled():
    with FeishuSandbox(records=20, rate_limits=True) as sandbox:
        client = Client(sandbox)
        client.fetch_token()
        ids = sorted(sandbox.records, key=int)[:11]
        responses = [client.update(record_id, "0") for record_id in ids]
        assert [r.status_code for r in responses] == [200] * 10 + [429]
        assert all(r.headers["x-ogw-ratelimit-limit"] == "10" for r in responses)
        throttled = responses[-1]
        assert throttled.json()["code"] == 99991400
        assert throttled.json()["msg"] == "request trigger frequency limit"
        assert int(throttled.headers["x-ogw-ratelimit-reset"]) >= 1
        assert sandbox.records[ids[-1]]["version"] == "0"  # the throttled write did not happen
        # get has its own, larger budget
        assert client.call("GET", f"{RECORDS}/{ids[0]}").headers["x-ogw-ratelimit-limit"] == "50"


def test_rate_limit_scale_and_switch_off():
    with FeishuSandbox(records=20, rate_limits=True, rate_limit_scale=0.5) as sandbox:
        client = Client(sandbox)
        statuses = [client.update(record_id, "0").status_code for record_id in sorted(sandbox.records, key=int)[:6]]
        assert statuses == [200] * 5 + [429]
    with FeishuSandbox(records=20, rate_limits=False) as sandbox:
        client = Client(sandbox)
        responses = [client.update(record_id, "0") for record_id in sorted(sandbox.records, key=int)[:15]]
        assert {r.status_code for r in responses} == {200}
        assert "x-ogw-ratelimit-limit" not in responses[0].headers


# faults


def test_status_faults(sb, client):
    client.fetch_token()
    sb.faults.add(action="status", status=429, reset=3, match={"method": "PUT"})
    sb.faults.add(action="status", status=500, match={"method": "GET"})
    sb.faults.add(action="status", status=503, match={"method": "GET"})

    throttled = client.update(FIRST_ID, "0")
    assert throttled.status_code == 429 and throttled.json()["code"] == 99991400
    assert throttled.headers["x-ogw-ratelimit-reset"] == "3"
    assert throttled.headers["x-ogw-ratelimit-limit"] == "10"
    internal = client.call("GET", f"{RECORDS}/{FIRST_ID}")
    assert (internal.status_code, internal.json()["code"]) == (500, 1780001)
    gateway = client.call("GET", f"{RECORDS}/{FIRST_ID}")
    assert gateway.status_code == 503 and "Service Temporarily Unavailable" in gateway.text
    assert client.call("GET", f"{RECORDS}/{FIRST_ID}").status_code == 200  # all spent
    assert sb.records[FIRST_ID]["version"] == "0"
    faults = [entry["fault"] for entry in sb.wire.entries(path_regex="device_records")]
    assert faults == ["status", "status", "status", None]


def test_reset_drops_connection_before_applying(sb, client):
    client.fetch_token()
    sb.faults.add(action="reset", match={"method": "PUT"})
    with pytest.raises(requests.exceptions.ConnectionError):
        client.update(FIRST_ID, "0")
    assert sb.records[FIRST_ID]["version"] == "0"
    entry = sb.wire.entries(method="PUT")[-1]
    assert entry["fault"] == "reset" and entry["status"] is None
    assert client.update(FIRST_ID, "0").json()["code"] == 0  # the client recovers on a new connection


def test_reset_after_apply_writes_then_drops_connection(sb, client):
    client.fetch_token()
    sb.faults.add(action="reset_after_apply", match={"method": "PUT"})
    with pytest.raises(requests.exceptions.ConnectionError):
        client.update(FIRST_ID, "0", ownership=1, status=2)
    record = sb.records[FIRST_ID]
    assert record["version"] == "1" and (record["device_ownership"], record["device_status"]) == (1, 2)
    entry = sb.wire.entries(method="PUT")[-1]
    assert (entry["fault"], entry["status"], entry["api_code"]) == ("reset_after_apply", 200, 0)
    # a blind retry with the old version now looks stale
    assert client.update(FIRST_ID, "0").json()["code"] == 1785008


def test_latency_delays_the_answer(sb, client):
    client.fetch_token()
    sb.faults.add(action="latency", seconds=0.3, match={"method": "GET"})
    with pytest.raises(requests.exceptions.ReadTimeout):
        client.session.get(
            f"{sb.url}{RECORDS}/{FIRST_ID}", headers={"Authorization": f"Bearer {client.token}"}, timeout=0.1
        )
    sb.faults.add(action="latency", seconds=0.2, match={"method": "GET"})
    started = time.monotonic()
    assert client.call("GET", f"{RECORDS}/{FIRST_ID}").json()["code"] == 0
    assert time.monotonic() - started >= 0.2


def test_expire_tokens_fault(sb, client):
    old_token = client.fetch_token()
    sb.faults.add(action="expire_tokens", match={"path_regex": r"/device_records/\d+$"})
    expired = client.call("GET", f"{RECORDS}/{FIRST_ID}")
    assert (expired.status_code, expired.json()["code"]) == (400, 99991663)
    assert sb.wire.entries()[-1]["fault"] == "expire_tokens"
    assert client.call("GET", RECORDS).json()["code"] == 99991663  # old token stays dead
    assert client.fetch_token() != old_token
    assert client.call("GET", f"{RECORDS}/{FIRST_ID}").json()["code"] == 0


def test_expire_tokens_api(sb, client):
    client.fetch_token()
    assert sb.expire_tokens() == 1
    assert client.call("GET", f"{RECORDS}/{FIRST_ID}").json()["code"] == 99991663


def test_concurrent_edit_makes_the_read_version_stale(sb, client):
    read = client.get_record(FIRST_ID)
    sb.faults.add(action="concurrent_edit", match={"method": "PUT"}, fields={"device_status": 2})
    stale = client.update(FIRST_ID, read["version"], ownership=2, status=1)
    assert (stale.status_code, stale.json()["code"]) == (400, 1785008)
    assert sb.wire.entries(method="PUT")[-1]["fault"] == "concurrent_edit"
    fresh = client.get_record(FIRST_ID)
    assert fresh["version"] == "1" and fresh["device_status"] == 2
    assert fresh["updated_at"] > read["updated_at"]
    assert client.update(FIRST_ID, fresh["version"], ownership=2, status=1).json()["code"] == 0
    assert client.get_record(FIRST_ID)["version"] == "2"


def test_fault_skip_times_and_match(sb, client):
    client.fetch_token()
    sb.faults.add(action="status", status=500, match={"method": "GET", "path_regex": SECOND_ID}, skip=1, times=2)
    codes = [client.call("GET", f"{RECORDS}/{SECOND_ID}").status_code for _attempt in range(4)]
    assert codes == [200, 500, 500, 200]
    assert client.call("GET", f"{RECORDS}/{FIRST_ID}").status_code == 200
    assert sb.faults.rules() == []
    with pytest.raises(ValueError):
        sb.faults.add(action="explode")


# wire log, keep-alive, control endpoints


def test_wire_log_records_requests(sb, client):
    token = client.fetch_token()
    client.update(FIRST_ID, "0", ownership=1, status=2)
    entry = sb.wire.entries(method="PUT")[0]
    assert entry["path"] == f"{RECORDS}/{FIRST_ID}"
    assert entry["query"] == {"version": "0"}
    assert entry["headers"]["Authorization"] == f"Bearer {token}"
    assert entry["body"] == {"device_ownership": 1, "device_status": 2}
    assert (entry["status"], entry["api_code"], entry["fault"]) == (200, 0, None)
    sb.wire.clear()
    assert sb.wire.entries() == []


def test_keep_alive_reuses_one_connection(sb, client):
    client.fetch_token()
    client.call("GET", f"{RECORDS}/{FIRST_ID}")
    client.call("GET", f"{RECORDS}/{SECOND_ID}")
    assert sb.connection_count == 1
    assert len({entry["connection"] for entry in sb.wire.entries()}) == 1


def test_control_endpoints(sb, client):
    base = sb.url + "/_sandbox"
    client.fetch_token()
    client.call("GET", f"{RECORDS}/{FIRST_ID}")
    wire = requests.get(f"{base}/wire").json()
    assert [entry["method"] for entry in wire["entries"]] == ["POST", "GET"]
    assert requests.get(f"{base}/wire", params={"since": wire["last_seq"]}).json()["entries"] == []
    assert requests.delete(f"{base}/wire").json() == {"cleared": 2}

    rules = [{"action": "status", "status": 500, "match": {"method": "GET"}}, {"action": "latency", "seconds": 0}]
    added = requests.post(f"{base}/faults", json=rules).json()["faults"]
    assert [rule["action"] for rule in added] == ["status", "latency"]
    assert requests.post(f"{base}/faults", json={"action": "nope"}).status_code == 400
    assert requests.delete(f"{base}/faults").json() == {"cleared": 2}

    duplicate = requests.post(f"{base}/records", json={"device_name": "FG-LAPTOP-0001", "device_system": 1}).json()
    assert duplicate["device_record_id"] == "7400000000000000051" and duplicate["version"] == "0"
    state = requests.get(f"{base}/state").json()
    assert state["count"] == 51
    assert sum(record.get("device_name") == "FG-LAPTOP-0001" for record in state["records"]) == 2

    assert requests.post(f"{base}/expire_tokens").json() == {"expired": 1}
    assert client.call("GET", f"{RECORDS}/{FIRST_ID}").json()["code"] == 99991663

    reset = requests.post(f"{base}/reset", json={"seed": 2, "rate_limits": True}).json()
    assert reset["seed"] == 2 and reset["rate_limits"] is True
    assert sb.records == FeishuSandbox(records=50, seed=2).records
    assert all(entry["path"].startswith("/open-apis") for entry in sb.wire.entries())


def test_add_record_python_api(sb):
    record = sb.add_record(device_name="FG-LAPTOP-0001", device_system=1, serial_number="")
    assert record["device_record_id"] in sb.records
    assert "serial_number" not in record


# command line


def start_cli(*args):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "feishu", "--port", "0", *args],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    if not selector.select(timeout=10):
        process.kill()
        pytest.fail("sandbox did not print its ready line")
    return process, json.loads(process.stdout.readline())


def test_cli_serves_until_sigterm(tmp_path):
    ready_file = tmp_path / "ready.json"
    process, ready = start_cli("--records", "5", "--seed", "3", "--ready-file", str(ready_file))
    try:
        assert ready["app_id"] == "cli_sandbox" and ready["app_secret"] == "sandbox-secret"
        assert ready["feishu"].startswith("http://127.0.0.1:")
        assert json.loads(ready_file.read_text()) == ready
        token = requests.post(
            ready["feishu"] + TOKEN_PATH, json={"app_id": ready["app_id"], "app_secret": ready["app_secret"]}
        ).json()["tenant_access_token"]
        listed = requests.get(ready["feishu"] + RECORDS, headers={"Authorization": f"Bearer {token}"}).json()
        assert len(listed["data"]["items"]) == 5
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=5)
    assert process.returncode == 0
    assert stdout == "" and stderr == ""
    assert not ready_file.exists()


def test_cli_verbose_logs_without_authorization():
    process, ready = start_cli("--verbose", "--no-rate-limits")
    try:
        token = requests.post(
            ready["feishu"] + TOKEN_PATH, json={"app_id": ready["app_id"], "app_secret": ready["app_secret"]}
        ).json()["tenant_access_token"]
        requests.get(f"{ready['feishu']}{RECORDS}/{FIRST_ID}", headers={"Authorization": f"Bearer {token}"})
    finally:
        process.send_signal(signal.SIGTERM)
        stderr = process.communicate(timeout=5)[1]
    assert process.returncode == 0
    assert f"GET {RECORDS}/{FIRST_ID} -> 200" in stderr
    assert token not in stderr and "Authorization" not in stderr and "sandbox-secret" not in stderr
