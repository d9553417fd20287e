"""HTTP transport: retries with bounds, Retry-After, writes never resent blindly, pacing, safe paths."""

import os
import ssl
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import ApiError, InputError, TransientError
from ansible_collections.fleetguard.devices.plugins.module_utils.retry_policy import retry_after_seconds
from ansible_collections.fleetguard.devices.plugins.module_utils.transport import (
    HttpTransport,
    path_segment,
    server_usage,
)


class TlsServer:
    """An HTTPS server on 127.0.0.1 with a self-signed certificate; `other_ca` is a CA file that does not sign it."""

    def __init__(self, directory):
        from sandbox.msgraph_auth import make_test_certificate

        pem, dummy = make_test_certificate(directory)
        os.makedirs(os.path.join(str(directory), "other"))
        self.other_ca = os.path.join(str(directory), "other", "ca.pem")
        with open(self.other_ca, "w") as handle:
            handle.write(make_test_certificate(os.path.join(str(directory), "other"))[1])

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pem)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.url = "https://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def tls_server(tmp_path):
    server = TlsServer(tmp_path)
    yield server
    server.stop()


class Sleeps(list):
    def __call__(self, seconds):
        self.append(seconds)


def make_transport(server, **kwargs):
    sleeps = Sleeps()
    transport = HttpTransport(server.url, timeout=5, max_retries=kwargs.pop("max_retries", 3), sleep=sleeps, **kwargs)
    return transport, sleeps


def test_a_read_retries_429_after_the_servers_retry_after(scripted_server):
    scripted_server.script = [(429, {"Retry-After": "2"}, {}), (200, {}, {"v": 1})]
    transport, sleeps = make_transport(scripted_server)
    response = transport.request("GET", "/x")
    assert response.status == 200 and response.json == {"v": 1}
    assert len(scripted_server.requests) == 2
    assert 2.0 <= sleeps[0] <= 2.2


def test_feishu_ratelimit_reset_header_is_honoured(scripted_server):
    scripted_server.script = [(429, {"x-ogw-ratelimit-reset": "1"}, {"code": 99991400}), (200, {}, {})]
    transport, sleeps = make_transport(scripted_server)
    assert transport.request("GET", "/x").status == 200
    assert 1.0 <= sleeps[0] <= 1.1


def test_429_on_a_write_is_retried_because_the_server_did_not_apply_it(scripted_server):
    scripted_server.script = [(429, {"Retry-After": "0"}, {}), (204, {}, None)]
    transport, dummy = make_transport(scripted_server)
    assert transport.request("PATCH", "/x", json_body={"a": 1}).status == 204
    assert [r[0] for r in scripted_server.requests] == ["PATCH", "PATCH"]


def test_retries_are_bounded_and_the_last_answer_is_returned(scripted_server):
    scripted_server.script = [(503, {}, {})] * 10
    transport, sleeps = make_transport(scripted_server, max_retries=2)
    assert transport.request("GET", "/x").status == 503
    assert len(scripted_server.requests) == 3
    assert len(sleeps) == 2


def test_5xx_on_a_write_is_not_resent(scripted_server):
    scripted_server.script = [(500, {}, {"code": 1780001})]
    transport, dummy = make_transport(scripted_server)
    assert transport.request("PUT", "/x", json_body={}).status == 500
    assert len(scripted_server.requests) == 1


def test_a_reset_during_a_read_is_retried(scripted_server):
    scripted_server.script = ["reset", (200, {}, {"v": 2})]
    transport, dummy = make_transport(scripted_server)
    assert transport.request("GET", "/x").json == {"v": 2}


def test_a_reset_during_a_write_raises_maybe_applied_without_resending(scripted_server):
    scripted_server.script = ["reset", (200, {}, {})]
    transport, dummy = make_transport(scripted_server)
    with pytest.raises(TransientError) as caught:
        transport.request("PUT", "/records/1?version=1", json_body={"a": 1},
                          headers={"Authorization": "Bearer t-secret"})
    assert caught.value.maybe_applied
    assert len(scripted_server.requests) == 1
    assert "t-secret" not in str(caught.value) and "t-secret" not in repr(caught.value.to_dict())
    assert caught.value.path == "/records/1"


def test_an_idempotent_post_is_retried_after_a_reset(scripted_server):
    scripted_server.script = ["reset", (200, {}, {"code": 0})]
    transport, dummy = make_transport(scripted_server)
    assert transport.request("POST", "/token", json_body={}, idempotent=True).status == 200


def test_reads_give_up_after_max_retries_resets(scripted_server):
    scripted_server.script = ["reset"] * 5
    transport, dummy = make_transport(scripted_server, max_retries=1)
    with pytest.raises(TransientError) as caught:
        transport.request("GET", "/x")
    assert not caught.value.maybe_applied
    assert len(scripted_server.requests) == 2


def test_keep_alive_reuses_one_connection(scripted_server):
    transport, dummy = make_transport(scripted_server)
    for dummy_i in range(5):
        transport.request("GET", "/x")
    assert scripted_server.connections == 1


def test_redirects_are_not_followed_and_say_where_they_pointed(scripted_server):
    # A redirect could turn a PUT into a GET and make a write look done (netbox #1492).
    scripted_server.script = [(307, {"Location": "https://elsewhere.example/path?code=secret"}, {})]
    transport, dummy = make_transport(scripted_server)
    with pytest.raises(ApiError) as caught:
        transport.request("PUT", "/x", json_body={}, headers={"Authorization": "Bearer t0ken"})
    assert "redirected" in str(caught.value) and "https://elsewhere.example/path" in str(caught.value)
    assert "code=secret" not in str(caught.value) and caught.value.status == 307
    assert len(scripted_server.requests) == 1


def test_a_certificate_that_does_not_verify_is_said_so_and_not_retried(scripted_server):
    # TLS spoken to a plain HTTP server fails the handshake the same way every time.
    transport, sleeps = make_transport(scripted_server)
    with pytest.raises(ApiError) as caught:
        transport.request("GET", scripted_server.url.replace("http://", "https://") + "/x")
    assert "TLS certificate" in str(caught.value) and "validate_certs" in str(caught.value)
    assert not isinstance(caught.value, TransientError) and sleeps == []


def test_validate_certs_false_holds_when_a_ca_bundle_is_in_the_environment(tls_server, monkeypatch):
    # requests would let REQUESTS_CA_BUNDLE replace a session-wide verify=False.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls_server.other_ca)
    monkeypatch.setenv("CURL_CA_BUNDLE", tls_server.other_ca)
    transport = HttpTransport(tls_server.url, timeout=5, validate_certs=False)
    assert transport.request("GET", "/x").status == 200
    verifying = HttpTransport(tls_server.url, timeout=5, max_retries=0)
    with pytest.raises(ApiError):
        verifying.request("GET", "/x")


@pytest.mark.parametrize("options, named", [
    (dict(timeout=0), "timeout"), (dict(timeout=-1), "timeout"), (dict(max_retries=-3), "max_retries"),
    (dict(timeout=float("nan")), "timeout"), (dict(timeout=float("inf")), "timeout"),
])
def test_numeric_options_out_of_range_are_refused(options, named):
    with pytest.raises(InputError) as caught:
        HttpTransport("http://127.0.0.1:1", **options)
    assert named in str(caught.value)


def test_a_malformed_url_is_an_input_error_not_a_traceback():
    transport = HttpTransport("http://127.0.0.1:1", timeout=5)
    with pytest.raises(InputError):
        transport.request("GET", "http://exa mple.invalid:99999/x")


def test_retry_after_as_an_http_date_is_honoured(scripted_server):
    when = formatdate(time.time() + 2, usegmt=True)
    scripted_server.script = [(429, {"Retry-After": when}, {}), (200, {}, {})]
    transport, sleeps = make_transport(scripted_server)
    assert transport.request("GET", "/x").status == 200
    assert 0.9 <= sleeps[0] <= 2.5


def test_a_retry_after_beyond_the_cap_fails_clearly_instead_of_stalling(scripted_server):
    scripted_server.script = [(429, {"Retry-After": "3600"}, {})]
    transport, sleeps = make_transport(scripted_server)
    with pytest.raises(TransientError) as caught:
        transport.request("GET", "/x")
    assert "3600 s" in str(caught.value) and "180 s" in str(caught.value)
    assert sleeps == [] and len(scripted_server.requests) == 1


def test_a_throttling_answer_under_http_200_is_retried_when_the_client_says_so(scripted_server):
    scripted_server.script = [(200, {"x-ogw-ratelimit-reset": "1"}, {"code": 99991400, "msg": "request trigger frequency limit"}),
                              (200, {}, {"code": 0, "data": {}})]
    transport, sleeps = make_transport(scripted_server)
    # The transport returns what it saw; the client, which reads the body, asks it to wait and sends again.
    response = transport.request("GET", "/x")
    assert response.json.get("code") == 99991400 and sleeps == []
    assert transport.wait_to_resend(response, "GET", "/x", throttled=True)
    response = transport.request("GET", "/x", first_attempt=response.attempt + 1)
    assert response.json == {"code": 0, "data": {}} and 1.0 <= sleeps[0] <= 1.1


@pytest.mark.parametrize("value, expected", [
    ("7400", "7400"),
    ("a/b", "a%2Fb"),
    ("..", "%2E%2E"),
    ("x?y=1", "x%3Fy%3D1"),
    ("it's", "it%27s"),
    ("#frag", "%23frag"),
])
def test_path_segment_cannot_escape_its_segment(value, expected):
    assert path_segment(value) == expected


@pytest.mark.parametrize("headers, expected", [
    ({"Retry-After": "3"}, 3.0),
    ({"Retry-After": "0.249"}, 0.249),
    ({"x-ogw-ratelimit-reset": "1"}, 1.0),
    ({"Retry-After": "soon"}, None),
    ({}, None),
    ({"Retry-After": "nan", "x-ogw-ratelimit-reset": "2"}, 2.0),
    ({"Retry-After": "NaN"}, None),
    ({"Retry-After": "-5"}, None),
    ({"Retry-After": -5}, 0.0),
    ({"Retry-After": {"nested": [1]}}, None),
    ({"Retry-After": ["3"]}, None),
    ({"Retry-After": True}, None),
    ({"Retry-After": 2}, 2.0),
    ({"Retry-After": "Fri, 31 Dec 99999 23:59:59 GMT"}, None),
    ({"x-ogw-ratelimit-reset": "-Infinity"}, None),
], ids=repr)
def test_retry_after_parsing(headers, expected):
    assert retry_after_seconds(headers) == expected


@pytest.mark.parametrize("headers, expected", [
    ({"retry-after": "10"}, 10.0),
    ({"RETRY-AFTER": "0.249"}, 0.249),
    ({"X-Ogw-Ratelimit-Reset": "2"}, 2.0),
    ({"retry-after": "Fri, 31 Dec 99999 23:59:59 GMT", "X-OGW-RATELIMIT-RESET": "4"}, 4.0),
], ids=repr)
def test_a_batch_parts_headers_are_read_whatever_their_case(headers, expected):
    # A $batch part's headers are a plain JSON object; HTTP header names are case-insensitive.
    assert retry_after_seconds(headers) == expected


@pytest.mark.parametrize("value", [
    "1_0", "\u0661\u0660", "\uff11\uff10", "\u0967\u0966", "1e1", "+10", "-5", ".5", "5.", "0x10", "1 0",
    "Infinity", "-Infinity", "1e999", "inf",
    "Fri, \u0663\u0661 Dec 2099 23:59:59 GMT", "Fri, 3_1 Dec 2099 23:59:59 GMT",
], ids=ascii)
def test_a_retry_after_is_read_only_in_the_shapes_http_allows(value):
    # delay-seconds is 1*DIGIT in ASCII (Graph adds decimals); Python's float() takes far more.
    assert retry_after_seconds({"Retry-After": value}) is None
    assert retry_after_seconds({"x-ogw-ratelimit-reset": value}) is None


@pytest.mark.parametrize("value, expected", [
    ("10", 10.0), (" 10 ", 10.0), ("0.249", 0.249), ("0", 0.0), ("1" + "0" * 400, 1e9),
], ids=ascii)
def test_a_retry_after_in_ascii_digits_is_read(value, expected):
    assert retry_after_seconds({"Retry-After": value}) == expected


@pytest.mark.parametrize("value", [
    "Bearer t-canarytoken0123\n", "Bearer t-canarytoken0123\r\nX-Injected: 1", " Bearer t-canarytoken0123",
], ids=["trailing-newline", "header-injection", "leading-space"])
def test_a_header_value_requests_refuses_is_named_by_its_header_never_quoted(scripted_server, value):
    transport = HttpTransport(scripted_server.url, timeout=5, max_retries=0)
    with pytest.raises(InputError) as caught:
        transport.request("GET", "/x", headers={"Authorization": value, "Accept": "application/json"})
    assert "the value of Authorization holds a line break" in str(caught.value)
    assert "canary" not in str(caught.value) and "Accept" not in str(caught.value)
    assert scripted_server.requests == []


@pytest.mark.parametrize("headers, share", [
    ({"x-ms-throttle-limit-percentage": "0.9"}, 0.9),
    ({"X-Ms-Throttle-Limit-Percentage": "1.8"}, 1.8),
    ({"x-ms-throttle-limit-percentage": "high"}, None),
    ({"x-ms-throttle-limit-percentage": "nan"}, None),
    ({"x-ms-throttle-limit-percentage": "-1"}, None),
    ({"x-ms-throttle-limit-percentage": "1e999"}, None),
    ({"x-ms-throttle-limit-percentage": "-inf"}, None),
    ({"x-ms-throttle-limit-percentage": ["0.9"]}, None),
    ({"x-ms-throttle-limit-percentage": True}, None),
    ({"x-ms-throttle-limit-percentage": "\u0660.\u0669"}, None),
    ({"x-ms-throttle-limit-percentage": "0_9"}, None),
    ({}, None),
    (None, None),
])
def test_the_servers_share_of_a_window_is_read_only_when_it_is_a_plain_number(headers, share):
    assert server_usage(headers) == share


@pytest.mark.parametrize("value", ["1" + "0" * 400, "1" + "0" * 300, "181"], ids=len)
def test_a_retry_after_without_end_fails_clearly_instead_of_stalling_or_crashing(scripted_server, value):
    for name in ("Retry-After", "x-ogw-ratelimit-reset"):
        scripted_server.script = [(429, {name: value}, {})]
        transport, sleeps = make_transport(scripted_server)
        with pytest.raises(TransientError) as caught:
            transport.request("GET", "/x")
        assert "more than the 180 s a task waits" in str(caught.value)
        assert sleeps == []


@pytest.mark.parametrize("value", ["nan", "-1e999", "-30", "1e999", "Infinity", "1_0"])
def test_a_retry_after_that_is_no_wait_never_stalls(scripted_server, value):
    scripted_server.script = [(429, {"Retry-After": value}, {}), (200, {}, {})]
    transport, sleeps = make_transport(scripted_server, backoff_cap=0.01)
    assert transport.request("GET", "/x").status == 200
    assert len(sleeps) == 1 and 0.0 <= sleeps[0] <= 0.1


def test_a_throttled_request_pauses_its_quota_no_longer_than_the_cap(scripted_server):
    scripted_server.script = [(429, {"Retry-After": "180"}, {}), (200, {}, {})]
    now = [1000.0]
    sleeps = Sleeps()

    def sleep(seconds):
        sleeps(seconds)
        now[0] += seconds

    transport = HttpTransport(scripted_server.url, timeout=5, sleep=sleep, wall_clock=lambda: now[0])
    quota = transport.define_quota("reads", 10, 1.0)
    assert transport.request("GET", "/x", quota="reads").status == 200
    assert len(sleeps) == 1 and 180.0 <= sleeps[0] <= quota.max_pause


def test_backoff_stays_within_its_cap_after_any_number_of_attempts():
    transport = HttpTransport("http://127.0.0.1:1", timeout=5, max_retries=5000, backoff_cap=2.0)
    assert all(0.0 <= transport.backoff(attempt) <= 2.0 for attempt in (0, 10, 1100, 5000))
