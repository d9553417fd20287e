"""msgraph_batch: $batch calls of 20 against a scripted server; parts resent as the retry policy says, together."""

import json

import pytest

from ansible_collections.fleetguard.devices.plugins.module_utils.bulk import run_each
from ansible_collections.fleetguard.devices.plugins.module_utils.errors import ApiError
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_batch import BATCH_LIMIT, GraphBatch, batch_item
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_client import GraphClient
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_credentials import ClientSecretCredential
from ansible_collections.fleetguard.devices.plugins.module_utils.transport import HttpTransport
from ansible_collections.fleetguard.devices.tests.unit.plugins.module_utils.fake_time import FakeTime

TENANT = "8f3c1a52-6d1e-4b7a-9c1e-2a5b7d9e0f11"
TOKEN_OK = (200, {}, {"token_type": "Bearer", "expires_in": 3599, "access_token": "eyJ.app.token"})
THROTTLED = {"error": {"code": "TooManyRequests", "message": "Too many requests"}}


def make_batch(server, max_retries=3):
    time = FakeTime(now=0.0)
    transport = HttpTransport(server.url, timeout=5, max_retries=max_retries, backoff_base=0.001, sleep=time.sleep,
                              clock=time.clock, wall_clock=time.clock)
    credential = ClientSecretCredential(server.url, TENANT, "cid", server.url + "/.default", secret="s3cret-value")
    return GraphBatch(GraphClient(transport, server.url, credential=credential)), time.sleeps


def answer(*parts):
    return (200, {}, {"responses": [dict(id=i, status=s, headers=h, body=b) for i, s, h, b in parts]})


def reads(count):
    return [dict(id=str(n), method="GET", url="/devices/%d" % n) for n in range(1, count + 1)]


def sent_parts(server):
    """The ids of the parts of each $batch call the server received."""
    return [[part["id"] for part in json.loads(body)["requests"]] for method, path, dummy, body in server.requests
            if path.endswith("/$batch")]


def test_parts_to_resend_from_different_calls_go_out_together_in_the_next_round(scripted_server):
    requests = reads(25)
    first = [(r["id"], 429 if r["id"] == "3" else 200, {"Retry-After": "1"}, THROTTLED if r["id"] == "3" else {"id": r["id"]})
             for r in requests[:20]]
    second = [(r["id"], 429 if r["id"] == "22" else 200, {"Retry-After": "2"}, THROTTLED if r["id"] == "22" else {"id": r["id"]})
              for r in requests[20:]]
    scripted_server.script = [TOKEN_OK, answer(*first), answer(*second),
                              answer(("3", 200, {}, {"id": "3"}), ("22", 200, {}, {"id": "22"}))]
    batch, sleeps = make_batch(scripted_server)
    answers = batch.send(requests)
    assert all(answers[r["id"]].status == 200 and answers[r["id"]].error is None for r in requests)
    assert sent_parts(scripted_server) == [[r["id"] for r in requests[:20]], [r["id"] for r in requests[20:]], ["3", "22"]]
    # One wait for the round: the longest Retry-After among the parts to resend.
    assert [wait for wait in sleeps if wait >= 1] == [pytest.approx(2.0, abs=0.05)]


def test_the_runner_it_is_given_sends_the_calls(scripted_server):
    seen = []

    def each(chunks, work):
        seen.append([len(chunk) for chunk in chunks])
        return run_each(chunks, work, workers=1)

    requests = reads(2 * BATCH_LIMIT + 3)
    scripted_server.script = [TOKEN_OK] + [answer(*[(r["id"], 200, {}, {"id": r["id"]}) for r in requests[start:start + 20]])
                                           for start in (0, 20, 40)]
    batch, dummy = make_batch(scripted_server)
    assert len(batch.send(requests, each)) == 43
    assert seen == [[20, 20, 3]]


def test_a_part_throttled_on_every_try_is_sent_max_retries_plus_one_times(scripted_server):
    scripted_server.script = [TOKEN_OK] + [answer(("1", 429, {"Retry-After": "0"}, THROTTLED))] * 3
    batch, dummy = make_batch(scripted_server, max_retries=2)
    answers = batch.send(reads(1))
    assert answers["1"].status == 429 and answers["1"].error.status == 429
    assert sent_parts(scripted_server) == [["1"], ["1"], ["1"]]


def test_a_part_asked_to_wait_beyond_the_cap_is_kept_with_the_reason_not_resent(scripted_server):
    scripted_server.script = [TOKEN_OK, answer(("1", 429, {"Retry-After": "100000"}, THROTTLED))]
    batch, sleeps = make_batch(scripted_server)
    answers = batch.send(reads(1))
    assert "asked to wait 100000 s, more than the 180 s a task waits" in answers["1"].error.message
    assert sent_parts(scripted_server) == [["1"]] and sleeps == []


def test_a_failed_read_part_is_resent_and_a_failed_write_part_is_not(scripted_server):
    unavailable = {"error": {"code": "ServiceUnavailable", "message": "try later"}}
    scripted_server.script = [TOKEN_OK,
                              answer(("1", 503, {}, unavailable), ("2", 503, {}, unavailable)),
                              answer(("1", 200, {}, {"id": "a"}))]
    batch, dummy = make_batch(scripted_server)
    answers = batch.send([dict(id="1", method="GET", url="/devices/a"),
                          dict(id="2", method="PATCH", url="/devices/b", body={"accountEnabled": False})])
    assert answers["1"].body == {"id": "a"}
    assert answers["2"].status == 503 and answers["2"].error.maybe_applied
    assert sent_parts(scripted_server) == [["1", "2"], ["1"]]


def test_a_part_whose_status_is_no_http_status_fails_the_call(scripted_server):
    scripted_server.script = [TOKEN_OK, answer(("1", "200", {}, {"id": "a"}))]
    batch, dummy = make_batch(scripted_server)
    with pytest.raises(ApiError) as caught:
        batch.send(reads(1))
    assert "sub-request 1" in str(caught.value) and caught.value.path == "/$batch"


def test_a_read_part_whose_body_is_no_object_is_an_error_of_that_part(scripted_server):
    scripted_server.script = [TOKEN_OK, answer(("1", 200, {}, "a string"), ("2", 200, {}, {"id": "b"}))]
    batch, dummy = make_batch(scripted_server)
    answers = batch.send(reads(2))
    assert "the body is str, not an object" in answers["1"].error.message and answers["2"].error is None


def test_a_part_with_a_body_is_sent_as_json():
    assert batch_item(dict(id="1", method="PATCH", url="/devices/a", body={"accountEnabled": False})) == {
        "id": "1", "method": "PATCH", "url": "/devices/a", "body": {"accountEnabled": False},
        "headers": {"Content-Type": "application/json"}}
    assert batch_item(dict(id="2", method="DELETE", url="/devices/b")) == {"id": "2", "method": "DELETE", "url": "/devices/b"}
