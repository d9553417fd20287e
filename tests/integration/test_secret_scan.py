"""Secret scan: every module, role and inventory plugin at -vvvv with --diff, in check mode and for real, on its
success path and on each failure path, with recognisable secrets (app_secret, client_secret, tenant_access_token,
access_token, certificate password, federated token file content, and every token and client assertion the
emulators issued or received). None of them may appear in stdout, stderr, the registered results, the diffs,
the audit reports, the inventory cache, or any file the collection writes (the quota state files under the temp
dir included); and no request may leave toward the host a redirect points at.

Secrets reach the modules the ways users pass them: environment variables (as AWX injects them), module
arguments, role variables and inventory source files. The playbooks and source files this test writes hold
them on purpose and are not scanned; everything else under the test's folder is.
"""

import base64
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest
import yaml

from sandbox.feishu import FeishuSandbox
from sandbox.msgraph import GraphSandbox
from sandbox.msgraph_auth import Caller, mint_access_token

FEISHU_APP_SECRET = "FEISHU-APP-SECRET-canary-5e1f0c"
FEISHU_WRONG_SECRET = "FEISHU-WRONG-SECRET-canary-77aa"
FEISHU_TENANT_TOKEN = "t-canarytenanttoken5e1f0c9a7b3d000001"
FEISHU_DEAD_TOKEN = "t-canarydeadtoken5e1f0c9a7b3d0000002"
GRAPH_CLIENT_SECRET = "GRAPH-CLIENT-SECRET-canary-9a7b3d"
GRAPH_WRONG_SECRET = "GRAPH-WRONG-SECRET-canary-31cd"
CERTIFICATE_PASSWORD = "CERT-PASSWORD-canary-2c4e6a"
WRONG_CERTIFICATE_PASSWORD = "WRONG-CERT-PASSWORD-canary-8f0e"
DEAD_ACCESS_TOKEN = "eyJ0eXAiOiJKV1QifQ.eyJjYW5hcnkiOnRydWV9.CANARYDEADACCESSTOKENSIGNATURE0001"
# Chunks of a secret this long or longer are searched for too: a message that cuts a token still leaks it.
CHUNK = 16
QUOTA_DIR = "fleetguard-devices-quota"
FEISHU_PUT = {"method": "PUT"}
GRAPH_PATCH_PART = {"method": "PATCH", "batch_item": True}
GRAPH_BATCH_CALL = {"method": "POST", "path_regex": r"/\$batch$", "batch_item": False}
FEISHU_TOKEN_CALL = {"method": "POST", "path_regex": r"/tenant_access_token/internal$"}
GRAPH_TOKEN_CALL = {"method": "POST", "path_regex": r"/oauth2/v2\.0/token$"}


def canary_access_token(graph, roles=None, marker="CANARYACCESSTOKEN"):
    """A Graph access token the emulator accepts, with a recognisable signature."""
    now = time.time()
    caller = Caller(True, graph.client_id, graph.tenant_id,
                    permissions=frozenset(graph.app_roles if roles is None else roles))
    header, claims, dummy = mint_access_token(caller, now, now + 3600).split(".")
    token = "%s.%s.%s%s" % (header, claims, marker, base64.urlsafe_b64encode(os.urandom(24)).decode().rstrip("="))
    graph.tokens.add(token, now + 3600, caller=caller)
    return token


def encrypted_certificate(directory, password):
    """A PEM file with a password-protected private key and its certificate: (path, certificate PEM, key lines)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fleetguard-secret-scan")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    certificate_pem = certificate.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.BestAvailableEncryption(password.encode()))
    plain_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()).decode()
    path = directory / "client-encrypted.pem"
    path.write_bytes(key_pem + certificate_pem)
    # Lines from the middle of the key (the first ones hold the encoding's header, common to every key).
    key_lines = [line for text in (key_pem.decode(), plain_key)
                 for line in [line for line in text.splitlines() if line and not line.startswith("-----")][3:5]]
    return str(path), certificate_pem.decode(), key_lines


class Canaries:
    """Emulators that hold the canary secrets, each failure path's emulator of its own, and every secret a
    scan looks for (static ones, and what the emulators issued or received, collected after the runs)."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        # The TMPDIR of the runs, scanned like the test's folder. Short: ansible-core 2.21 puts the unix socket of
        # its local RPC server there, and a socket path may not exceed 107 bytes (pytest's folders are long).
        self.tmp_dir = tempfile.mkdtemp(prefix="fg-scan-")
        self.inputs = []  # files this test wrote that hold secrets on purpose: not scanned
        (tmp_path / "inputs").mkdir()
        self.certificate_path, self.certificate_pem, self.key_lines = encrypted_certificate(
            tmp_path / "inputs", CERTIFICATE_PASSWORD)
        self.sandboxes = []
        self.feishu = self.new_feishu()
        self.graph = self.new_graph()
        self.token_file = tmp_path / "inputs" / "azure-identity-token"
        self.federated_token = self.graph.mint_federated_token(path=self.token_file)
        self.access_token = canary_access_token(self.graph)
        self.read_only_token = canary_access_token(self.graph, roles=["Device.Read.All"], marker="CANARYREADONLY")

    def new_feishu(self, faults=()):
        sandbox = FeishuSandbox(records=12, seed=5, app_secret=FEISHU_APP_SECRET).start()
        sandbox.tokens.add(FEISHU_TENANT_TOKEN, time.time() + 7200, app_id=sandbox.app_id)
        for rule in faults:
            sandbox.faults.add(**rule)
        self.sandboxes.append(sandbox)
        return sandbox

    def new_graph(self, faults=()):
        sandbox = GraphSandbox(devices=16, seed=5, client_secret=GRAPH_CLIENT_SECRET).start()
        sandbox.register_certificate(self.certificate_pem)
        if hasattr(self, "access_token"):  # the shared emulator's canary tokens are valid in every one
            for token in (self.access_token, self.read_only_token):
                sandbox.tokens.add(token, time.time() + 3600, caller=self.graph.tokens.lookup(token)["caller"])
        for rule in faults:
            sandbox.faults.add(**rule)
        self.sandboxes.append(sandbox)
        return sandbox

    def stop(self):
        for sandbox in self.sandboxes:
            sandbox.stop()
        shutil.rmtree(self.tmp_dir, ignore_errors=True)

    def env(self):
        """What AWX's credential types inject, pointing at the shared emulators; the temp dir of this test."""
        tmp = self.tmp_dir
        return {"FEISHU_APP_ID": self.feishu.app_id, "FEISHU_APP_SECRET": FEISHU_APP_SECRET,
                "SANDBOX_FEISHU_URL": self.feishu.url, "MSGRAPH_ENDPOINT": self.graph.url,
                "AZURE_AUTHORITY_HOST": self.graph.url, "AZURE_TENANT_ID": self.graph.tenant_id,
                "AZURE_CLIENT_ID": self.graph.client_id, "AZURE_CLIENT_SECRET": GRAPH_CLIENT_SECRET,
                "TMPDIR": str(tmp), "TMP": str(tmp), "TEMP": str(tmp),
                "SCAN_FEISHU_APP_SECRET": FEISHU_APP_SECRET, "SCAN_FEISHU_WRONG_SECRET": FEISHU_WRONG_SECRET,
                "SCAN_FEISHU_TENANT_TOKEN": FEISHU_TENANT_TOKEN, "SCAN_FEISHU_DEAD_TOKEN": FEISHU_DEAD_TOKEN,
                "SCAN_GRAPH_CLIENT_SECRET": GRAPH_CLIENT_SECRET, "SCAN_GRAPH_WRONG_SECRET": GRAPH_WRONG_SECRET,
                "SCAN_ACCESS_TOKEN": self.access_token, "SCAN_READ_ONLY_TOKEN": self.read_only_token,
                "SCAN_DEAD_ACCESS_TOKEN": DEAD_ACCESS_TOKEN, "SCAN_CERTIFICATE_PASSWORD": CERTIFICATE_PASSWORD,
                "SCAN_WRONG_CERTIFICATE_PASSWORD": WRONG_CERTIFICATE_PASSWORD}

    def secrets(self):
        """{label: secret}: the canaries, and every token and assertion the emulators issued or received."""
        found = {"app_secret": FEISHU_APP_SECRET, "wrong app_secret": FEISHU_WRONG_SECRET,
                 "tenant_access_token": FEISHU_TENANT_TOKEN, "dead tenant_access_token": FEISHU_DEAD_TOKEN,
                 "client_secret": GRAPH_CLIENT_SECRET, "wrong client_secret": GRAPH_WRONG_SECRET,
                 "access_token": self.access_token, "read-only access_token": self.read_only_token,
                 "dead access_token": DEAD_ACCESS_TOKEN, "certificate password": CERTIFICATE_PASSWORD,
                 "wrong certificate password": WRONG_CERTIFICATE_PASSWORD,
                 "federated token file content": self.federated_token}
        for number, line in enumerate(self.key_lines):
            found["private key line %d" % number] = line
        for sandbox in self.sandboxes:
            for number, token in enumerate(sandbox.issued_tokens()):
                found.setdefault("token %d issued by %s" % (number, sandbox.url), token)
            if isinstance(sandbox, GraphSandbox):
                for entry in sandbox.wire.entries(method="POST"):
                    if entry["path"].endswith("/oauth2/v2.0/token") and isinstance(entry["body"], str):
                        for number, assertion in enumerate(re.findall(r"client_assertion=([^&]+)", entry["body"])):
                            found.setdefault("client assertion %d sent to %s (seq %d)" % (number, sandbox.url, entry["seq"]),
                                             assertion)
        return found


@pytest.fixture
def canaries(tmp_path):
    canaries = Canaries(tmp_path)
    yield canaries
    canaries.stop()


def needles(secrets):
    """[(label, text to look for)]: each secret whole, and for a long one each of its chunks (the JWT header
    left out: every token shares it)."""
    found = []
    for label, secret in secrets.items():
        found.append((label, secret))
        body = secret.split(".", 1)[1] if secret.count(".") == 2 else secret
        if len(body) >= 2 * CHUNK:
            found.extend((label, body[start:start + CHUNK]) for start in range(0, len(body) - CHUNK + 1, CHUNK))
    return found


class Scanner:
    """Finds the secrets (whole, and by chunks) in texts."""

    def __init__(self, secrets):
        pairs = needles(secrets)
        self.pattern = re.compile("|".join(re.escape(text) for dummy, text in sorted(pairs, key=lambda p: -len(p[1]))))
        self.labels = dict((text, label) for label, text in pairs)

    def hits(self, texts):
        """["place: secret label, after: ...context"] for each secret that shows in `texts` ({place: text})."""
        found = {}
        for place, text in texts.items():
            for match in self.pattern.finditer(text):
                label = self.labels[match.group(0)]
                around = text[max(0, match.start() - 120):match.start()] + "<<%s>>" % label
                found.setdefault((place, label), around.replace("\n", " "))
        return sorted("%s: %s, after: ...%s" % (place, label, around) for (place, label), around in found.items())


def written_files(canaries):
    """Every file under the test's folder and its TMPDIR but the inputs this test wrote itself: results, ansible's
    own temp and home, the reports, the inventory cache, the quota state files."""
    files = {}
    skip = set(str(path) for path in canaries.inputs) | {str(canaries.tmp_path / "inputs")}
    for top, label in ((str(canaries.tmp_path), ""), (canaries.tmp_dir, "TMPDIR")):
        for root, dummy_dirs, names in os.walk(top):
            if any(root == s or root.startswith(s + os.sep) for s in skip):
                continue
            for name in names:
                path = os.path.join(root, name)
                if path in skip or name in ("play.yml", "inventory") or not os.path.isfile(path):
                    continue  # os.path.isfile: a socket left behind cannot be read
                with open(path, "rb") as handle:
                    files[os.path.join(label, os.path.relpath(path, top))] = handle.read().decode("utf-8", "replace")
    return files


def assert_no_secret(canaries, outputs, recorder):
    scanner = Scanner(canaries.secrets())
    for label, secret in canaries.secrets().items():  # the scan finds a secret cut as a message would cut it
        assert scanner.hits({"probe": "...%s..." % secret[len(secret) // 3:][:80]}) or len(secret) < 3 * CHUNK, label
    texts = dict(outputs)
    texts.update(written_files(canaries))
    hits = scanner.hits(texts)
    assert hits == [], "secrets leaked:\n%s" % "\n".join(hits)
    for place, text in outputs.items():
        assert not re.search(r"(?i)bearer [A-Za-z0-9._-]{8,}", text), "a bearer token shows in %s" % place
    assert recorder.requests == [], "a request followed a redirect: %s" % [
        (r["method"], r["target"], sorted(r["headers"])) for r in recorder.requests]
    quota_files = [name for name in texts if QUOTA_DIR in name]
    assert quota_files, "no quota state file was found under the test's temp dir (TMPDIR): the scan missed them"


# --- what runs --------------------------------------------------------------------------------------------------------


def ref(name):
    """A secret as a playbook refers to it (here: from the environment, Canaries.env()), never written in the
    playbook: ansible-core quotes the lines of a playbook around a failed task, which would show a literal."""
    return "{{ lookup('ansible.builtin.env', 'SCAN_%s') }}" % name


def module_task(name, module, args, env=None):
    task = {"name": name, "fleetguard.devices." + module: args, "ignore_errors": True}
    if env:
        task["environment"] = env
    return task


def role_task(name, role, role_vars):
    """The role, with its failure rescued so the next one runs."""
    return {"name": name, "block": [{"name": "%s: the role" % name, "ansible.builtin.include_role": {
        "name": "fleetguard.devices." + role}, "vars": role_vars}],
        "rescue": [{"name": "%s: failed, as this path does" % name, "ansible.builtin.debug": {"msg": "rescued"}}]}


def pick(sandbox, count, **fields):
    with sandbox.lock:
        if isinstance(sandbox, FeishuSandbox):
            return [rid for rid in sorted(sandbox.records, key=int)
                    if all(sandbox.records[rid].get(k, 0) == v for k, v in fields.items())][:count]
        return [oid for oid in sorted(sandbox.devices)
                if all(sandbox.devices[oid].get(k) == v for k, v in fields.items())][:count]


def module_tasks(canaries, recorder):
    """Every module on its success path and on each failure path."""
    c = canaries
    feishu_url = {"base_url": c.feishu.url}
    graph_url = {"graph_endpoint": c.graph.url, "authority_host": c.graph.url}
    records = pick(c.feishu, 6, device_status=1)
    windows = pick(c.graph, 7, operatingSystem="Windows")
    redirect = dict(action="answer", status=307, headers={"Location": "http://localhost:%d/steal?code=1" % recorder.port})
    static = dict(tenant_access_token=ref("FEISHU_TENANT_TOKEN"), app_id="", app_secret="")

    def feishu_with(*faults):
        return {"base_url": c.new_feishu(faults).url}

    def graph_with(*faults):
        sandbox = c.new_graph(faults)
        return {"graph_endpoint": sandbox.url, "authority_host": sandbox.url}

    fr, fi, gd, gi = "feishu_device_record", "feishu_device_record_info", "msgraph_device", "msgraph_device_info"
    untrust = {"device_status": "untrusted"}
    disable = {"account_enabled": False, "extension_attributes": {"extensionAttribute15": "quarantine:SCAN"}}
    return [
        module_task("feishu: app secret from the environment", fr, dict(feishu_url, device_record_id=[records[0]], **untrust)),
        module_task("feishu: tenant_access_token as an argument", fr,
                    dict(feishu_url, device_record_id=[records[1]], device_ownership="company", **static)),
        module_task("feishu: app_secret as an argument", fr,
                    dict(feishu_url, device_record_id=[records[2]], app_secret=ref("FEISHU_APP_SECRET"), **untrust)),
        module_task("feishu: delete", fr, dict(feishu_url, device_record_id=[records[3]], state="absent")),
        module_task("feishu: token expires mid-run", fr,
                    dict(feishu_with(dict(action="expire_tokens", match=FEISHU_PUT)), device_record_id=records[:2],
                         **untrust)),
        module_task("feishu: wrong app_secret", fr, dict(feishu_url, device_record_id=[records[4]],
                                                         app_secret=ref("FEISHU_WRONG_SECRET"), **untrust)),
        module_task("feishu: a dead tenant_access_token", fr,
                    dict(feishu_url, device_record_id=[records[4]], tenant_access_token=ref("FEISHU_DEAD_TOKEN"), app_id="",
                         app_secret="", **untrust)),
        module_task("feishu: a device that does not exist", fr, dict(feishu_url, device_name=["NO-SUCH-DEVICE"], **untrust)),
        module_task("feishu: a malformed id", fr, dict(feishu_url, device_record_id=["1/../2"], **untrust)),
        module_task("feishu: 500 until retries are spent", fr,
                    dict(feishu_with(dict(action="status", status=500, match=FEISHU_PUT, times=20)),
                         device_record_id=[records[5]], max_retries=1, **untrust)),
        module_task("feishu: a write redirected to another host", fr,
                    dict(feishu_with(dict(redirect, match=FEISHU_PUT)), device_record_id=[records[5]], **untrust)),
        module_task("feishu: the token call redirected to another host", fr,
                    dict(feishu_with(dict(redirect, match=FEISHU_TOKEN_CALL)), device_record_id=[records[5]], **untrust)),
        module_task("feishu info: by filter", fi, dict(feishu_url, filters={"device_status": "trusted"})),
        module_task("feishu info: tenant_access_token as an argument", fi, dict(feishu_url, limit=2, **static)),
        module_task("feishu info: wrong app_secret", fi, dict(feishu_url, limit=2, app_secret=ref("FEISHU_WRONG_SECRET"))),
        module_task("graph: client secret from the environment", gd, dict(graph_url, id=[windows[0]], **disable)),
        module_task("graph: client_secret as an argument", gd,
                    dict(graph_url, id=[windows[1]], client_secret=ref("GRAPH_CLIENT_SECRET"), **disable)),
        module_task("graph: access_token as an argument", gd,
                    dict(graph_url, id=[windows[2]], access_token=ref("ACCESS_TOKEN"), **disable)),
        module_task("graph: certificate with a password", gd,
                    dict(graph_url, id=[windows[3]], auth_source="certificate", client_certificate_path=c.certificate_path,
                         client_certificate_password=ref("CERTIFICATE_PASSWORD"), **disable)),
        module_task("graph: federated token file", gd,
                    dict(graph_url, id=[windows[4]], auth_source="workload_identity", federated_token_file=str(c.token_file),
                         **disable)),
        module_task("graph: delete", gd, dict(graph_url, id=[windows[5]], state="absent")),
        module_task("graph: token expires mid-batch", gd,
                    dict(graph_with(dict(action="expire_tokens", match=GRAPH_PATCH_PART, skip=1)), id=windows[:3],
                         **disable)),
        module_task("graph: wrong client_secret", gd, dict(graph_url, id=[windows[6]], client_secret=ref("GRAPH_WRONG_SECRET"),
                                                           **disable)),
        module_task("graph: a dead access_token", gd, dict(graph_url, id=[windows[6]], access_token=ref("DEAD_ACCESS_TOKEN"),
                                                           **disable)),
        module_task("graph: wrong certificate password", gd,
                    dict(graph_url, id=[windows[6]], auth_source="certificate", client_certificate_path=c.certificate_path,
                         client_certificate_password=ref("WRONG_CERTIFICATE_PASSWORD"), **disable)),
        module_task("graph: wrong certificate password (none, the key is encrypted)", gd,
                    dict(graph_url, id=[windows[6]], auth_source="certificate", client_certificate_path=c.certificate_path,
                         **disable)),
        module_task("graph: a malformed token answer (expires_in 1e999)", gd,
                    dict(graph_with(dict(action="answer", content_type="application/json", match=GRAPH_TOKEN_CALL,
                                         body='{"token_type": "Bearer", "access_token": "%s", "expires_in": 1e999}'
                                         % c.access_token)), id=[windows[6]], **disable)),
        module_task("graph: a read-only token", gd, dict(graph_url, id=[windows[6]], access_token=ref("READ_ONLY_TOKEN"),
                                                         **disable)),
        module_task("graph: a device that does not exist", gd, dict(graph_url, display_name=["NO-SUCH-PC"], **disable)),
        module_task("graph: 503 until retries are spent", gd,
                    dict(graph_with(dict(action="status", status=503, match=GRAPH_PATCH_PART, times=20)), id=[windows[6]],
                         max_retries=1, **disable)),
        module_task("graph: the $batch call redirected to another host", gd,
                    dict(graph_with(dict(redirect, match=GRAPH_BATCH_CALL)), id=[windows[6]], **disable)),
        module_task("graph: the token call redirected to another host", gd,
                    dict(graph_with(dict(redirect, match=GRAPH_TOKEN_CALL)), id=[windows[6]], **disable)),
        module_task("graph info: by filter", gi, dict(graph_url, filter="operatingSystem eq 'Windows'", limit=3)),
        module_task("graph info: access_token as an argument", gi, dict(graph_url, limit=2, access_token=ref("ACCESS_TOKEN"))),
        module_task("graph info: a filter Graph refuses", gi, dict(graph_url, filter="displayName eq 'unterminated")),
        module_task("graph info: wrong client_secret", gi, dict(graph_url, limit=2, client_secret=ref("GRAPH_WRONG_SECRET"))),
    ]


def role_tasks(canaries, reports):
    """Every role on its success path and on each failure path, the connection (secrets included) given as role
    variables."""
    c = canaries
    feishu_connection = dict(base_url=c.feishu.url, app_id=c.feishu.app_id, app_secret=ref("FEISHU_APP_SECRET"))
    graph_connection = dict(graph_endpoint=c.graph.url, authority_host=c.graph.url, tenant_id=c.graph.tenant_id,
                            client_id=c.graph.client_id, client_secret=ref("GRAPH_CLIENT_SECRET"))
    wrong_feishu = dict(feishu_connection, app_secret=ref("FEISHU_WRONG_SECRET"))
    token_connection = dict(graph_endpoint=c.graph.url, access_token=ref("ACCESS_TOKEN"))
    records = pick(c.feishu, 3, device_status=1)
    never_vetted = pick(c.feishu, 1, device_status=0)
    windows = pick(c.graph, 3, operatingSystem="Windows")
    quarantine = dict(quarantine_reason="INC-SCAN", quarantine_feishu_connection=feishu_connection,
                      quarantine_msgraph_connection=graph_connection)
    release = dict(release_feishu_connection=feishu_connection, release_msgraph_connection=token_connection)
    baseline = [{"device_record_id": records[2], "device_status": "untrusted"},
                {"id": windows[2], "account_enabled": False}, {"display_name": "NO-SUCH-PC", "account_enabled": True}]
    return [
        role_task("quarantine", "quarantine", dict(quarantine, quarantine_feishu_device_record_ids=records[:1],
                                                   quarantine_msgraph_ids=windows[:1])),
        role_task("quarantine: an identifier that matches nothing", "quarantine",
                  dict(quarantine, quarantine_feishu_device_record_ids=["7499999999999999999"],
                       quarantine_msgraph_ids=windows[1:2])),
        role_task("quarantine: wrong app_secret", "quarantine",
                  dict(quarantine, quarantine_feishu_connection=wrong_feishu,
                       quarantine_feishu_device_record_ids=records[1:2])),
        role_task("release", "release", dict(release, release_feishu_device_record_ids=records[:1],
                                             release_msgraph_ids=windows[:1])),
        role_task("release: a device with no sign of a quarantine", "release",
                  dict(release, release_feishu_device_record_ids=never_vetted)),
        role_task("audit", "audit", dict(audit_baseline=baseline, audit_report_dir=str(reports / "ok"),
                                         audit_feishu_connection=feishu_connection,
                                         audit_msgraph_connection=token_connection)),
        role_task("audit: wrong app_secret", "audit", dict(audit_baseline=baseline[:1],
                                                           audit_report_dir=str(reports / "wrong"),
                                                           audit_feishu_connection=wrong_feishu, audit_fail_on_drift=True)),
        role_task("stale_devices", "stale_devices", dict(stale_devices_report_dir=str(reports / "stale"),
                                                         stale_devices_msgraph_connection=graph_connection)),
        role_task("stale_devices: a threshold inside Graph's sign-in update lag", "stale_devices",
                  dict(stale_devices_mode="disable", stale_devices_inactive_days=1,
                       stale_devices_report_dir=str(reports / "stale-refused"),
                       stale_devices_msgraph_connection=graph_connection)),
        role_task("stale_devices: wrong client_secret", "stale_devices",
                  dict(stale_devices_report_dir=str(reports / "stale-wrong"),
                       stale_devices_msgraph_connection=dict(graph_connection,
                                                             client_secret=ref("GRAPH_WRONG_SECRET")))),
    ]


def run_scanned(playbook, canaries, recorder, tasks, check):
    runner = type(playbook)(canaries.tmp_path, dict(playbook.env, **canaries.env()))
    text = yaml.safe_dump(tasks, sort_keys=False, width=float("inf"))
    run = runner(text, check=check, diff=True, verbosity=4, module_defaults=False)
    assert "ESTABLISH LOCAL CONNECTION" in run.stdout, "not -vvvv"
    # ansible-core up to 2.20 prints each module's invocation (its arguments, no_log ones masked) at -vvvv: scanned.
    core = re.search(r"ansible-playbook \[core (\d+)\.(\d+)", run.stdout)
    assert core and ((int(core.group(1)), int(core.group(2))) >= (2, 21) or '"invocation"' in run.stdout), "not -vvvv"
    assert_no_secret(canaries, {"ansible-playbook output": run.stdout, "results": json.dumps(run.results)}, recorder)
    return run


@pytest.mark.once
@pytest.mark.parametrize("check", [True, False], ids=["check mode", "real"])
def test_modules_leak_no_secret(canaries, playbook, recorder, check):
    tasks = module_tasks(canaries, recorder)
    run = run_scanned(playbook, canaries, recorder, tasks, check)
    statuses = dict((entry["task"], entry["status"]) for entry in run.results)
    # The paths are what their names say: the success paths succeeded, the failure paths failed (check mode sends
    # no write, so a fault on writes is no failure there).
    failing = r"wrong|dead|not exist|malformed|refuses|token call redirected|\$batch call redirected"
    if not check:
        failing += r"|spent|write redirected|read-only"
    wrong = ["%s ended %s" % (t["name"], statuses.get(t["name"])) for t in tasks
             if statuses.get(t["name"]) != ("failed" if re.search(failing, t["name"]) else "ok")]
    assert wrong == [], "\n".join(wrong)


@pytest.mark.once
@pytest.mark.parametrize("check", [True, False], ids=["check mode", "real"])
def test_roles_leak_no_secret(canaries, playbook, recorder, check):
    reports = canaries.tmp_path / "reports"
    run = run_scanned(playbook, canaries, recorder, role_tasks(canaries, reports), check)
    suffix = ": failed, as this path does"
    rescued = set(entry["task"][:-len(suffix)] for entry in run.results if entry["task"].endswith(suffix))
    assert rescued == {"quarantine: an identifier that matches nothing", "quarantine: wrong app_secret",
                       "release: a device with no sign of a quarantine", "audit: wrong app_secret",
                       "stale_devices: a threshold inside Graph's sign-in update lag", "stale_devices: wrong client_secret"}, rescued
    assert (reports / "ok" / "drift-report.json").exists() and (reports / "ok" / "drift-report.html").exists()
    assert (reports / "stale" / "stale-devices.json").exists() and (reports / "stale" / "stale-devices.html").exists()
    assert (reports / "wrong" / "drift-report.json").exists()


def test_inventory_plugins_leak_no_secret(canaries, playbook, recorder, tmp_path):
    c = canaries
    inputs = tmp_path / "inputs"
    cache = "cache: true\ncache_plugin: ansible.builtin.jsonfile\ncache_connection: %s\n" % (tmp_path / "inventory-cache")
    sources = {
        "feishu with the secret in the source": (
            "a.feishu_device_records.yml", "plugin: fleetguard.devices.feishu_device_records\nbase_url: %s\n"
            "app_id: %s\napp_secret: %s\n%s" % (c.feishu.url, c.feishu.app_id, FEISHU_APP_SECRET, cache), {}, 0),
        "feishu with a tenant_access_token": (
            "b.feishu_device_records.yml", "plugin: fleetguard.devices.feishu_device_records\nbase_url: %s\n"
            "tenant_access_token: %s\n" % (c.feishu.url, FEISHU_TENANT_TOKEN),
            {"FEISHU_APP_ID": "", "FEISHU_APP_SECRET": ""}, 0),
        "feishu with a wrong secret": (
            "c.feishu_device_records.yml", "plugin: fleetguard.devices.feishu_device_records\nbase_url: %s\n"
            "app_secret: %s\n" % (c.feishu.url, FEISHU_WRONG_SECRET), {}, 1),
        "graph with the secret in the source": (
            "a.msgraph_devices.yml", "plugin: fleetguard.devices.msgraph_devices\nclient_secret: %s\n%s"
            % (GRAPH_CLIENT_SECRET, cache), {}, 0),
        "graph with a certificate and its password": (
            "b.msgraph_devices.yml", "plugin: fleetguard.devices.msgraph_devices\nauth_source: certificate\n"
            "client_certificate_path: %s\nclient_certificate_password: %s\n" % (c.certificate_path, CERTIFICATE_PASSWORD),
            {"AZURE_CLIENT_SECRET": ""}, 0),
        "graph with a federated token file": (
            "c.msgraph_devices.yml", "plugin: fleetguard.devices.msgraph_devices\n",
            {"AZURE_CLIENT_SECRET": "", "AZURE_FEDERATED_TOKEN_FILE": str(c.token_file)}, 0),
        "graph with an access token": (
            "d.msgraph_devices.yml", "plugin: fleetguard.devices.msgraph_devices\naccess_token: %s\n" % c.access_token,
            {"AZURE_CLIENT_SECRET": ""}, 0),
        "graph with a wrong secret": (
            "e.msgraph_devices.yml", "plugin: fleetguard.devices.msgraph_devices\nclient_secret: %s\n"
            % GRAPH_WRONG_SECRET, {}, 1),
        "graph with a wrong certificate password": (
            "f.msgraph_devices.yml", "plugin: fleetguard.devices.msgraph_devices\nauth_source: certificate\n"
            "client_certificate_path: %s\nclient_certificate_password: %s\n"
            % (c.certificate_path, WRONG_CERTIFICATE_PASSWORD), {"AZURE_CLIENT_SECRET": ""}, 1),
    }
    env = dict(playbook.env, **c.env())
    env["ANSIBLE_INVENTORY_UNPARSED_FAILED"] = "1"
    outputs = {}
    for label, (file_name, text, extra, failing) in sources.items():
        path = inputs / file_name
        path.write_text(textwrap.dedent(text))
        c.inputs.append(path)
        for attempt in ("first", "cached") if "cache:" in text else ("first",):
            proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-inventory"), "-i", str(path),
                                   "--list", "-vvvv"], env=dict(env, **extra), cwd=str(tmp_path), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, universal_newlines=True, timeout=300, check=False)
            assert (proc.returncode != 0) == bool(failing), "%s (%s): exit %d\n%s" % (
                label, attempt, proc.returncode, proc.stderr[-2000:])
            outputs["%s (%s): stdout" % (label, attempt)] = proc.stdout
            outputs["%s (%s): stderr" % (label, attempt)] = proc.stderr
    assert list((tmp_path / "inventory-cache").iterdir()), "the inventory cache was not written"
    assert_no_secret(canaries, outputs, recorder)
