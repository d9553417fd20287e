"""Fixtures for unit tests: a scripted HTTP server on 127.0.0.1 (tests mock at the socket, not in the code)."""

import json
import os
import socket
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS_PATH = os.path.join(REPO_ROOT, "build", "collections")

# The API emulators are the top-level `sandbox` package of the repository, which is not part of the
# collection's import path: make it importable however the tests are started (plain pytest, whose
# pytest.ini also lists ".", or ansible-test units, which only puts the ansible_collections root on it).
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)


@pytest.fixture(autouse=True)
def private_quota_state(tmp_path, monkeypatch):
    """Each test's own temp dir, where the quotas keep their shared windows (quota.py): a window or a pause that
    another test left under the same key (a port the system reused, a fake clock) must never hold this one back."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


def pytest_configure(config):
    """Install ansible's collection loader before any test imports the collection (as ansible-test units does),
    so plugin loaders find fleetguard.devices with its metadata: the inventory plugins' tests load them that way."""
    from ansible.utils.collection_loader import AnsibleCollectionConfig

    if AnsibleCollectionConfig.collection_finder is not None:
        # ansible-test units installed it already (its ansible_pytest_collections plugin); its module tests also
        # run without ansible.plugins on the path.
        return

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
    from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_credentials import ClientSecretCredential
    from ansible_collections.fleetguard.devices.plugins.module_utils.transport import HttpTransport

    transport = HttpTransport(timeout=5, max_retries=3, backoff_base=0.001, backoff_cap=0.01)
    credential = ClientSecretCredential(graph_sandbox.url, graph_sandbox.tenant_id, graph_sandbox.client_id,
                                        graph_sandbox.url + "/.default", secret=graph_sandbox.client_secret)
    return GraphClient(transport, graph_sandbox.url, credential=credential)


def connection_environment():
    """Every environment variable a connection option falls back to (module_utils/options.py, as documented), and
    those the Graph credential chain reads itself (managed identity, AKS pod identity)."""
    from ansible_collections.fleetguard.devices.plugins.module_utils.options import FEISHU_OPTIONS, MSGRAPH_OPTIONS

    names = [name for table in (FEISHU_OPTIONS, MSGRAPH_OPTIONS) for spec in table.values() for name in spec.get("env", ())]
    return names + ["IDENTITY_ENDPOINT", "IDENTITY_HEADER", "AZURE_POD_IDENTITY_AUTHORITY_HOST"]


@pytest.fixture
def no_connection_env(monkeypatch):
    """A developer's shell (AZURE_*, FEISHU_*, MSGRAPH_*) must not change what a module, an inventory plugin or an
    event source sees."""
    for name in connection_environment():
        monkeypatch.delenv(name, raising=False)


class NonLoopbackConnection(BaseException):
    """A test tried to reach something other than 127.0.0.1. A BaseException, so that no retry loop or
    error handler of the module can swallow it."""


class MainEnded(Exception):
    """Raised by the patched AnsibleModule.exit_json / fail_json: where main() hands its result to Ansible."""

    def __init__(self, failed, result, module):
        super().__init__(result.get("msg"))
        self.failed = failed
        self.result = result
        self.module = module


class MainRun:
    """How one main() call ended: `failed` (fail_json rather than exit_json), `result` (the keyword arguments
    main() gave exit_json or fail_json, before Ansible masks anything), and `no_log_values` (the values
    AnsibleModule masks in everything the module returns or logs)."""

    def __init__(self, ended):
        self.failed = ended.failed
        self.result = ended.result
        self.no_log_values = set(ended.module.no_log_values)

    def __repr__(self):
        return "MainRun(failed=%r, result=%r)" % (self.failed, self.result)


def allow_only_loopback(monkeypatch):
    """The modules talk only to the emulators on 127.0.0.1: a default endpoint left in by mistake must fail
    the test, not reach (or wait for) the real API."""
    real_connect = socket.socket.connect

    def loopback_only(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in ("127.0.0.1", "::1"):
            raise NonLoopbackConnection("a unit test tried to connect to %r" % (address,))
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", loopback_only)


@pytest.fixture
def run_main(monkeypatch, no_connection_env):
    """run_main(module, args, check_mode=False, diff=False, env=None) -> MainRun.

    Runs `module.main()` as Ansible would, with `args` as the task's module arguments (patch_module_args) and
    `env` as extra environment variables, and with exit_json / fail_json patched to end the run by raising
    (the way servicenow.itsm's `run_main` fixture does): the test sees exactly what main() returned.
    """
    from ansible.module_utils.basic import AnsibleModule
    from ansible.module_utils.testing import patch_module_args

    def exit_json(self, **kwargs):
        raise MainEnded(False, kwargs, self)

    def fail_json(self, msg, **kwargs):
        kwargs["msg"] = msg
        raise MainEnded(True, kwargs, self)

    monkeypatch.setattr(AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(AnsibleModule, "fail_json", fail_json)
    allow_only_loopback(monkeypatch)

    def run(module, args, check_mode=False, diff=False, env=None):
        args = dict(args)
        if check_mode:
            args["_ansible_check_mode"] = True
        if diff:
            args["_ansible_diff"] = True
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        with patch_module_args(args):
            try:
                module.main()
            except MainEnded as ended:
                return MainRun(ended)
        pytest.fail("%s.main() returned without calling exit_json or fail_json" % module.__name__)

    return run
