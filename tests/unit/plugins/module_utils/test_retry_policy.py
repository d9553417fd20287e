"""retry_policy: one decision for single requests and $batch parts: what is sent again, after how long, how often."""

import os

import pytest
import yaml

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import TransientError
from ansible_collections.fleetguard.devices.plugins.module_utils.retry_policy import MAX_RETRY_AFTER, RetryPolicy, is_write
from ansible_collections.fleetguard.devices.plugins.module_utils.transport import COLLECTION_VERSION, USER_AGENT, HttpTransport

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
POLICY = RetryPolicy(max_retries=3, backoff_base=0.5, backoff_cap=4.0)


@pytest.mark.parametrize("status, write, throttled, token_renewed, retried", [
    (429, False, False, False, True),
    (429, True, False, False, True),          # the server did not apply a throttled write
    (200, False, True, False, True),          # throttling the client read in the body (Feishu's code under HTTP 200)
    (200, True, True, False, True),
    (503, False, False, False, True),         # a failed read is safe to send again
    (503, True, False, False, False),         # a failed write may have landed: re-read first
    (500, False, False, False, True),
    (501, False, False, False, False),
    (401, True, False, True, True),           # a part refused for a token just replaced was never applied
    (401, True, False, False, False),
    (404, False, False, False, False),
    (None, True, False, False, False),        # a lost answer to a write is not resent blindly
    (200, False, False, False, False),
])
def test_what_is_sent_again(status, write, throttled, token_renewed, retried):
    decision = POLICY.decide(status, {}, 0, write, throttled=throttled, token_renewed=token_renewed)
    assert decision.retry is retried and decision.too_long is None


def test_the_servers_wait_is_used_and_said_to_be_the_servers():
    decision = POLICY.decide(429, {"Retry-After": "7"}, 0, write=True)
    assert (decision.retry, decision.wait, decision.asked) == (True, 7.0, True)
    decision = POLICY.decide(429, {"x-ogw-ratelimit-reset": "2"}, 0, write=False)
    assert (decision.wait, decision.asked) == (2.0, True)


def test_without_a_servers_wait_the_backoff_grows_within_its_cap():
    waits = [POLICY.decide(503, {}, attempt, write=False) for attempt in range(3)]
    assert all(decision.retry and not decision.asked for decision in waits)
    assert all(0.0 <= decision.wait <= 4.0 for decision in waits)


def test_a_token_just_replaced_is_used_at_once():
    decision = POLICY.decide(401, {"Retry-After": "9"}, 0, write=True, token_renewed=True)
    assert (decision.retry, decision.wait, decision.asked) == (True, 0.0, False)


def test_attempts_are_bounded():
    assert POLICY.decide(429, {"Retry-After": "1"}, 2, write=False).retry is True
    assert POLICY.decide(429, {"Retry-After": "1"}, 3, write=False).retry is False


def test_a_wait_beyond_the_cap_is_not_waited_for():
    decision = POLICY.decide(429, {"Retry-After": str(MAX_RETRY_AFTER + 1)}, 0, write=False)
    assert decision.retry is False and decision.too_long == MAX_RETRY_AFTER + 1
    assert POLICY.decide(429, {"Retry-After": str(MAX_RETRY_AFTER)}, 0, write=False).retry is True


@pytest.mark.parametrize("method, idempotent, write", [
    ("GET", None, False), ("get", None, False), ("HEAD", None, False), ("PATCH", None, True), ("DELETE", None, True),
    ("POST", None, True), ("POST", True, False), ("GET", False, True),
])
def test_which_requests_are_writes(method, idempotent, write):
    assert is_write(method, idempotent) is write


def test_a_single_request_follows_the_same_decision(scripted_server):
    sleeps = []
    transport = HttpTransport(scripted_server.url, timeout=5, max_retries=3, backoff_base=0.001, sleep=sleeps.append)
    scripted_server.script = [(503, {}, {}), (200, {}, {"v": 1})]
    assert transport.request("GET", "/x").status == 200
    scripted_server.script = [(503, {}, {})]
    assert transport.request("PATCH", "/x", json_body={}).status == 503
    scripted_server.script = [(429, {"Retry-After": str(MAX_RETRY_AFTER + 1)}, {})]
    with pytest.raises(TransientError) as caught:
        transport.request("GET", "/x")
    assert "more than the %d s a task waits" % MAX_RETRY_AFTER in str(caught.value)
    assert [r[0] for r in scripted_server.requests] == ["GET", "GET", "PATCH", "GET"]


def test_the_user_agent_names_the_version_galaxy_yml_gives(scripted_server):
    with open(os.path.join(REPO_ROOT, "galaxy.yml")) as handle:
        galaxy = yaml.safe_load(handle)
    assert COLLECTION_VERSION == galaxy["version"]
    assert USER_AGENT == "%s.%s/%s" % (galaxy["namespace"], galaxy["name"], galaxy["version"])
    HttpTransport(scripted_server.url, timeout=5).request("GET", "/x")
    assert scripted_server.requests[0][2]["User-Agent"] == USER_AGENT
