"""ansible-rulebook for the integration tests: a Java 17 runtime (tools/find-java), the command from this venv
(`make eda`, requirements-eda.txt), and one rulebook process with its output in a file. A missing runtime or
command fails a test, never skips it."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
ROUND = re.compile(r"fleetguard\.devices\.(msgraph_device_changes|feishu_device_record_changes): (\d+) event\(s\) \((.*)\)")


def java_home():
    found = subprocess.run([os.path.join(REPO, "tools", "find-java"), "17"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True, check=False)
    if found.returncode != 0:
        pytest.fail("ansible-rulebook needs a Java 17 runtime and none was found: %s" % found.stderr.strip())
    return found.stdout.strip()


def rulebook_command():
    command = os.path.join(os.path.dirname(sys.executable), "ansible-rulebook")
    if not os.path.exists(command):
        pytest.fail("%s is missing: run `make eda` (requirements-eda.txt)" % command)
    return command


class Rulebook:
    """One ansible-rulebook process (in its own process group), its output in a file."""

    def __init__(self, tmp_path, env):
        self.tmp_path = tmp_path
        self.env = env
        self.proc = None
        self.log = None
        self.starts = 0

    def start(self, rulebook, variables):
        self.starts += 1
        self.log = self.tmp_path / ("rulebook-%d.log" % self.starts)
        variables_file = self.tmp_path / "vars.yml"
        variables_file.write_text(yaml.safe_dump(variables))
        (self.tmp_path / "inventory").write_text("localhost ansible_connection=local\n")
        with open(str(self.log), "w") as output:
            self.proc = subprocess.Popen(
                [rulebook_command(), "-r", rulebook, "-i", str(self.tmp_path / "inventory"), "-e", str(variables_file),
                 "-v"], cwd=str(self.tmp_path), env=self.env, stdout=output, stderr=subprocess.STDOUT,
                start_new_session=True)
        return self

    def output(self):
        return self.log.read_text(errors="replace")

    def rounds(self, source="msgraph_device_changes"):
        """(events, details) of each logged round of a source."""
        return [(int(count), details) for name, count, details in ROUND.findall(self.output()) if name == source]

    def wait_for(self, check, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return time.monotonic()
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        pytest.fail("%s did not happen within %d s; ansible-rulebook output:\n%s" % (what, timeout, self.output()[-6000:]))

    def kill(self):
        """kill -9 of the rulebook and whatever it started (a playbook run)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def collections_path():
    """The folder holding ansible_collections/fleetguard/devices (the Makefile arranges it)."""
    return os.environ.get("ANSIBLE_COLLECTIONS_PATH") or os.path.join(REPO, "build", "collections")
