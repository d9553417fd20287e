"""Tests of the Graph emulator's device delta query (sandbox/msgraph_delta.py)."""

import urllib.parse

import pytest
import requests

from sandbox import GraphSandbox


@pytest.fixture
def graph():
    sandbox = GraphSandbox(devices=250, seed=4, throttling=False).start()
    yield sandbox
    sandbox.stop()


class Client:
    def __init__(self, sandbox):
        self.sandbox = sandbox
        self.session = requests.Session()
        self.token = sandbox.issue_token()

    def get(self, url, minimal=False, version="v1.0"):
        headers = {"Authorization": "Bearer " + self.token}
        if minimal:
            headers["Prefer"] = "return=minimal"
        if not url.startswith("http"):
            url = "%s/%s%s" % (self.sandbox.url, version, url)
        return self.session.get(url, headers=headers, timeout=5)

    def round(self, url, minimal=False, version="v1.0"):
        """(entries, deltaLink, pages) of one round."""
        entries, pages = [], 0
        while True:
            answer = self.get(url, minimal, version)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            pages += 1
            entries += body["value"]
            assert ("@odata.nextLink" in body) != ("@odata.deltaLink" in body)
            if "@odata.deltaLink" in body:
                return entries, body["@odata.deltaLink"], pages
            url = body["@odata.nextLink"]


@pytest.fixture
def client(graph):
    return Client(graph)


def first_id(graph):
    return next(iter(graph.devices))


@pytest.mark.parametrize("version", ["v1.0", "beta"])
def test_first_round_pages_every_device_with_skiptoken_links_then_a_deltatoken_link(graph, client, version):
    entries, delta_link, pages = client.round("/devices/delta?$select=id,accountEnabled,displayName", version=version)
    assert pages == 3  # 250 devices, 100 a page
    assert sorted(entry["id"] for entry in entries) == sorted(graph.devices)
    assert set(entries[0]) == {"id", "accountEnabled", "displayName"}
    assert "$deltatoken=" in delta_link and ("/%s/devices/delta" % version) in delta_link


def test_next_links_carry_skiptoken_only(client):
    body = client.get("/devices/delta?$select=id,displayName").json()
    query = urllib.parse.urlsplit(body["@odata.nextLink"]).query
    assert query.startswith("$skiptoken=") and "select" not in query


def test_an_idle_delta_link_answers_no_entries_and_a_new_link(client):
    _entries, delta_link, _pages = client.round("/devices/delta")
    entries, next_link, pages = client.round(delta_link)
    assert entries == [] and pages == 1 and next_link != delta_link


def test_an_updated_device_carries_only_changed_properties_with_return_minimal(graph, client):
    _entries, delta_link, _pages = client.round("/devices/delta?$select=id,accountEnabled,displayName,isCompliant")
    device_id = first_id(graph)
    with graph.lock:
        graph.devices[device_id]["accountEnabled"] = not graph.devices[device_id]["accountEnabled"]
    entries, _link, _pages = client.round(delta_link, minimal=True)
    assert entries == [{"id": device_id, "accountEnabled": graph.devices[device_id]["accountEnabled"]}]


def test_an_updated_device_carries_every_selected_property_without_return_minimal(graph, client):
    _entries, delta_link, _pages = client.round("/devices/delta?$select=id,accountEnabled,displayName")
    device_id = first_id(graph)
    with graph.lock:
        graph.devices[device_id]["displayName"] = "renamed"
    entries, _link, _pages = client.round(delta_link)
    assert entries == [{"id": device_id, "accountEnabled": graph.devices[device_id]["accountEnabled"],
                        "displayName": "renamed"}]


def test_a_change_to_an_unselected_property_is_not_an_entry(graph, client):
    _entries, delta_link, _pages = client.round("/devices/delta?$select=id,displayName")
    with graph.lock:
        graph.devices[first_id(graph)]["model"] = "another model"
    assert client.round(delta_link)[0] == []


def test_added_and_deleted_devices(graph, client):
    _entries, delta_link, _pages = client.round("/devices/delta?$select=id,displayName")
    gone = first_id(graph)
    with graph.lock:
        graph._forget(graph.devices[gone])
    added = graph.add_device(displayName="FG-NEW-0001")
    entries, _link, _pages = client.round(delta_link, minimal=True)
    assert {"id": added["id"], "displayName": "FG-NEW-0001"} in entries
    assert {"@odata.type": "#microsoft.graph.device", "id": gone, "@removed": {"reason": "deleted"}} in entries


def test_deltatoken_latest_answers_no_entries_and_a_link_of_now(graph, client):
    entries, delta_link, pages = client.round("/devices/delta?$deltatoken=latest&$select=id,isCompliant")
    assert entries == [] and pages == 1
    device_id = first_id(graph)
    with graph.lock:
        graph.devices[device_id]["isCompliant"] = not graph.devices[device_id]["isCompliant"]
    assert [entry["id"] for entry in client.round(delta_link)[0]] == [device_id]


def test_an_expired_delta_token_is_sync_state_not_found(graph, client):
    _entries, delta_link, _pages = client.round("/devices/delta")
    assert graph.expire_delta_tokens() >= 1
    answer = client.get(delta_link)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "syncStateNotFound"
    assert "request-id" in answer.json()["error"]["innerError"]


def test_the_test_route_expires_tokens(graph, client):
    _entries, delta_link, _pages = client.round("/devices/delta")
    assert requests.post(graph.url + "/_sandbox/delta/expire", timeout=5).json()["expired"] >= 1
    assert client.get(delta_link).json()["error"]["code"] == "syncStateNotFound"


def test_a_delta_token_older_than_seven_days_is_sync_state_not_found(graph, client):
    _entries, delta_link, _pages = client.round("/devices/delta")
    graph.advance_clock(days=7, seconds=60)
    token = graph.issue_token()  # the one before is expired now too
    client.token = token
    assert client.get(delta_link).json()["error"]["code"] == "syncStateNotFound"


def test_a_token_of_the_other_api_version_is_not_found(client):
    _entries, delta_link, _pages = client.round("/devices/delta")
    assert client.get(delta_link.replace("/v1.0/", "/beta/")).json()["error"]["code"] == "syncStateNotFound"


def test_delta_needs_a_token_and_is_logged(graph):
    answer = requests.get(graph.url + "/v1.0/devices/delta", timeout=5)
    assert answer.status_code == 401
    assert graph.wire.entries()[-1]["path"] == "/v1.0/devices/delta"


def test_unknown_query_options_are_refused(client):
    answer = client.get("/devices/delta?$orderby=displayName")
    assert answer.status_code == 400


def test_reset_forgets_delta_tokens(graph, client):
    _entries, delta_link, _pages = client.round("/devices/delta")
    graph.reset(devices=10)
    assert client.get(delta_link).json()["error"]["code"] == "syncStateNotFound"
