"""Fixtures for unit tests: a scripted HTTP server on 127.0.0.1 (tests mock at the socket, not in the code)."""

import json
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

COLLECTIONS_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "build", "collections")


def pytest_configure(config):
    """Install ansible's collection loader before any test imports the collection (as ansible-test units does),
    so plugin loaders find fleetguard.devices with its metadata: the inventory plugins' tests load them that way."""
    from ansible.plugins.loader import init_plugin_loader

    paths = (os.environ.get("ANSIBLE_COLLECTIONS_PATH") or COLLECTIONS_PATH).split(os.pathsep)
    # The loader refuses relative paths.
    init_plugin_loader([os.path.abspath(path) for path in paths if path])


class ScriptedServer:
    """Answers each request with the next scripted step: (status, headers, body) or "reset".

    Records every request it saw as (method, path, headers, body).
    """

    def __init__(self):
        self.script = []
        self.requests = []
        self.connections = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                server.connections += 1

            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                server.requests.append((self.command, self.path, dict(self.headers), body))
                step = server.script.pop(0) if server.script else (200, {}, {"ok": True})
                if step == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    self.close_connection = True
                    self.connection.close()
                    return
                status, headers, payload = step
                data = json.dumps(payload).encode() if payload is not None else b""
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def scripted_server():
    server = ScriptedServer()
    yield server
    server.stop()


class FakeModule:
    """The parts of AnsibleModule that run() reads."""

    def __init__(self, params, check_mode=False, diff=False):
        self.params = params
        self.check_mode = check_mode
        self._diff = diff


@pytest.fixture
def fake_module():
    """FakeModule(params, check_mode=False, diff=False)."""
    return FakeModule


@pytest.fixture
def feishu_sandbox():
    """A Feishu sandbox without rate limits (unit tests count calls, they do not wait)."""
    from sandbox.feishu import FeishuSandbox

    sandbox = FeishuSandbox(records=60, seed=3, rate_limits=False).start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def feishu_client(feishu_sandbox):
    from ansible_collections.fleetguard.devices.plugins.module_utils.feishu_client import FeishuClient
    from ansible_collections.fleetguard.devices.plugins.module_utils.transport import HttpTransport

    transport = HttpTransport(feishu_sandbox.url, timeout=5, max_retries=3, backoff_base=0.001, backoff_cap=0.01)
    return FeishuClient(transport, app_id=feishu_sandbox.app_id, app_secret=feishu_sandbox.app_secret)


@pytest.fixture
def graph_sandbox():
    """A Graph sandbox without throttling (unit tests count calls, they do not wait)."""
    from sandbox.msgraph import GraphSandbox

    sandbox = GraphSandbox(devices=60, seed=5, throttling=False).start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def graph_client(graph_sandbox):
    from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_client import GraphClient
    from ansible_collections.fleetguard.devices.plugins.module_utils.transport import HttpTransport

    transport = HttpTransport(graph_sandbox.url, timeout=5, max_retries=3, backoff_base=0.001, backoff_cap=0.01)
    return GraphClient(transport, graph_endpoint=graph_sandbox.url, authority_host=graph_sandbox.url,
                       tenant_id=graph_sandbox.tenant_id, client_id=graph_sandbox.client_id,
                       client_secret=graph_sandbox.client_secret)
