"""Integration fixtures: a Feishu sandbox on 127.0.0.1 and a runner for real ansible-playbook processes."""

import http.server
import json
import os
import socketserver
import subprocess
import sys
import textwrap
import threading

import pytest

from sandbox.feishu import FeishuSandbox
from sandbox.msgraph import GraphSandbox
from tests.integration.harness import Rulebook, collections_path, java_home

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
# make integration runs this suite under Python 3.11, then 3.12. A test marked `once` runs on the 3.11 leg only:
# minutes long, and about what the collection does at scale or over every role (a fault soak, secret scans, a
# lifecycle across wall-clock days), not about the Python it runs on. Everything else runs on both legs.
ONCE_LEG = (3, 11)


def pytest_collection_modifyitems(config, items):
    if sys.version_info[:2] == ONCE_LEG:
        return
    skip = pytest.mark.skip(reason="marked once: runs on the Python %d.%d leg of make integration" % ONCE_LEG)
    for item in items:
        if item.get_closest_marker("once") is not None:
            item.add_marker(skip)


class PlaybookRun:
    def __init__(self, returncode, stdout, results):
        self.returncode = returncode
        self.stdout = stdout
        self.results = results

    def task(self, name):
        """The result of the task with this name (the last one, if it ran more than once)."""
        found = [entry for entry in self.results if entry["task"] == name]
        assert found, "task %r did not run; output:\n%s" % (name, self.stdout[-3000:])
        return found[-1]


class PlaybookRunner:
    def __init__(self, tmp_path, env):
        self.tmp_path = tmp_path
        self.env = env
        self.count = 0

    def __call__(self, tasks, check=False, diff=False, verbosity=0, extra_env=None, play_vars=None,
                 module_defaults=True):
        """Run the tasks (YAML text of a task list) in a play against localhost."""
        self.count += 1
        base = self.tmp_path / ("run%d" % self.count)
        base.mkdir()
        lines = ["- name: integration", "  hosts: localhost", "  gather_facts: false"]
        if play_vars:
            lines.append("  vars: " + json.dumps(play_vars))
        if module_defaults:
            lines.append("  module_defaults:")
            lines.append("    group/fleetguard.devices.feishu:")
            lines.append("      base_url: \"{{ lookup('env', 'SANDBOX_FEISHU_URL') }}\"")
        lines.append("  tasks:")
        lines.append(textwrap.indent(textwrap.dedent(tasks).strip("\n"), "    "))
        (base / "play.yml").write_text("\n".join(lines) + "\n")
        (base / "inventory").write_text(
            "localhost ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
        results_file = base / "results.jsonl"
        env = dict(self.env)
        env["RECORD_RESULTS_FILE"] = str(results_file)
        env.update(extra_env or {})
        command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(base / "inventory"),
                   str(base / "play.yml")]
        if check:
            command.append("--check")
        if diff:
            command.append("--diff")
        if verbosity:
            command.append("-" + "v" * verbosity)
        proc = subprocess.run(command, env=env, cwd=str(base), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False,
                              universal_newlines=True, timeout=600)
        results = []
        if results_file.exists():
            results = [json.loads(line) for line in results_file.read_text().splitlines() if line.strip()]
        return PlaybookRun(proc.returncode, proc.stdout, results)


@pytest.fixture
def feishu():
    """A fresh Feishu sandbox with 60 generated records; rate limits on, as in production."""
    sandbox = FeishuSandbox(records=60, seed=7).start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def graph():
    """A fresh Graph sandbox with 120 generated devices; throttling on, as in production."""
    sandbox = GraphSandbox(devices=120, seed=11).start()
    yield sandbox
    sandbox.stop()


def sandbox_connection(feishu, graph):
    """The environment variables that lead the modules, plugins and sources to the emulators (app credentials)."""
    return {"FEISHU_APP_ID": feishu.app_id, "FEISHU_APP_SECRET": feishu.app_secret, "MSGRAPH_ENDPOINT": graph.url,
            "AZURE_AUTHORITY_HOST": graph.url, "AZURE_TENANT_ID": graph.tenant_id, "AZURE_CLIENT_ID": graph.client_id,
            "AZURE_CLIENT_SECRET": graph.client_secret}


@pytest.fixture
def playbook(tmp_path, feishu, graph):
    env = dict(os.environ)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": collections_path(),
        "ANSIBLE_CALLBACK_PLUGINS": os.path.join(HERE, "callback_plugins"),
        "ANSIBLE_CALLBACKS_ENABLED": "record_results",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "SANDBOX_FEISHU_URL": feishu.url,
    })
    env.update(sandbox_connection(feishu, graph))
    for name in ("FEISHU_TENANT_ACCESS_TOKEN", "FEISHU_BASE_URL", "MSGRAPH_ACCESS_TOKEN", "AZURE_SECRET",
                 "AZURE_TENANT", "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_CLIENT_CERTIFICATE_PASSWORD"):
        env.pop(name, None)
    return PlaybookRunner(tmp_path, env)


class Recorder:
    """An HTTP server on 127.0.0.1 that records every request and lets nothing through: a proxy that refuses
    every CONNECT (403), or the host a redirect points at (502). `requests`: method, target, headers, body."""

    def __init__(self):
        self.requests = []
        requests = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def _record(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
                requests.append(dict(method=self.command, target=self.path, headers=dict(self.headers), body=body))

            def do_CONNECT(self):
                self._record()
                self.send_response(403)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self):
                self._record()
                self.send_response(502)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def server_bind(self):
                socketserver.TCPServer.server_bind(self)  # no reverse DNS lookup

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder():
    """A Recorder: the host a redirect points at, or a proxy that must let nothing leave 127.0.0.1."""
    server = Recorder()
    yield server
    server.stop()


@pytest.fixture
def rulebook(tmp_path, feishu, graph):
    """A real ansible-rulebook (stopped after the test) with the emulators' connection in its environment only."""
    env = dict(os.environ)
    for name in ("FEISHU_TENANT_ACCESS_TOKEN", "MSGRAPH_ACCESS_TOKEN", "AZURE_SECRET", "AZURE_TENANT",
                 "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_FEDERATED_TOKEN_FILE", "IDENTITY_ENDPOINT", "IDENTITY_HEADER"):
        env.pop(name, None)
    env.update({
        "JAVA_HOME": java_home(),
        "PATH": os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""),
        "ANSIBLE_COLLECTIONS_PATH": collections_path(),
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "FEISHU_BASE_URL": feishu.url,
    })
    env.update(sandbox_connection(feishu, graph))
    runner = Rulebook(tmp_path, env)
    yield runner
    runner.stop()
