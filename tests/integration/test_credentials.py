"""Every way to sign in to Microsoft Graph, through real ansible-playbook and ansible-inventory against the
sandbox's token authority and managed identity endpoints on 127.0.0.1: client secret, certificate, federated
token file (workload identity), managed identity (App Service and IMDS forms), a bare access token; the
national cloud from AZURE_CLOUD_ENVIRONMENT; and no credential in any output, even at -vvvv.

No test here can reach another host: every run goes through a proxy on a closed loopback port for anything
but 127.0.0.1, so the metadata address 169.254.169.254 (or any real cloud) is never contacted.
"""

import base64
import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.parse

import pytest

from sandbox.msgraph_auth import make_test_certificate

INFO_TASK = "read devices"
CHANGE_TASK = "change one device"

# Everything that picks or carries a Graph credential; each test sets only the ones its credential kind uses.
CREDENTIAL_ENV = (
    "AZURE_CLIENT_SECRET", "AZURE_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_FEDERATED_TOKEN_FILE", "IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "MSI_SECRET",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST", "AZURE_CLOUD_ENVIRONMENT", "MSGRAPH_AUTH_SOURCE", "MSGRAPH_ACCESS_TOKEN",
)
# Any request to a host other than 127.0.0.1 goes to this proxy, where nothing listens.
LOOPBACK_ONLY = {name: "http://127.0.0.1:9" for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")}
LOOPBACK_ONLY.update(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")


@pytest.fixture
def signin(playbook):
    """The playbook runner with no Graph credential in its environment (tests add one) and loopback-only HTTP;
    AZURE_TENANT_ID, MSGRAPH_ENDPOINT and AZURE_AUTHORITY_HOST still point at the sandbox."""
    for name in CREDENTIAL_ENV:
        playbook.env.pop(name, None)
    playbook.env.update(LOOPBACK_ONLY)
    return playbook


def a_windows_device(graph):
    with graph.lock:
        device = next(d for oid, d in sorted(graph.devices.items())
                      if d["operatingSystem"] == "Windows" and d["accountEnabled"])
    return device["id"]


def read_and_change(device_id, **auth):
    """Two tasks: list Windows devices with msgraph_device_info, disable one with msgraph_device."""
    info = dict(filter="operatingSystem eq 'Windows'", select=["id", "displayName"], limit=5, **auth)
    change = dict(id=[device_id], account_enabled=False, **auth)
    return ("- name: %s\n  fleetguard.devices.msgraph_device_info: %s\n"
            "- name: %s\n  fleetguard.devices.msgraph_device: %s\n"
            % (INFO_TASK, json.dumps(info), CHANGE_TASK, json.dumps(change)))


def token_requests(graph):
    """The forms the token endpoint received."""
    return [urllib.parse.parse_qs(entry["body"]) for entry in graph.wire.entries(method="POST")
            if entry["path"].endswith("/oauth2/v2.0/token")]


def identity_requests(graph, path):
    return [entry for entry in graph.wire.entries(method="GET") if entry["path"] == path]


def graph_callers(graph):
    """The client ids the bearer tokens of the Graph requests stand for."""
    callers = set()
    for entry in graph.wire.entries():
        if entry["path"].startswith(("/v1.0/", "/beta/")) and entry.get("batch_item") is None:
            authorization = {k.lower(): v for k, v in entry["headers"].items()}.get("authorization", "")
            info = graph.tokens.lookup(authorization.split(" ", 1)[-1])
            callers.add(info["caller"].client_id if info else None)
    return callers


def jwt_header(token):
    part = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def assert_read_and_changed(run, graph, device_id):
    assert run.returncode == 0, run.stdout[-4000:]
    assert len(run.task(INFO_TASK)["result"]["devices"]) == 5
    assert run.task(CHANGE_TASK)["result"]["changed_devices"] == [device_id]
    assert graph.devices[device_id]["accountEnabled"] is False


def assert_no_credential_in(run, graph, *secrets):
    """None of these, no access token the sandbox issued and no assertion it received is in the output or the
    task results."""
    # Really -vvvv (the connection plugin's messages); ansible-core 2.21 no longer prints module invocations there.
    assert "ESTABLISH LOCAL CONNECTION" in run.stdout
    assertions = [value for form in token_requests(graph) for value in form.get("client_assertion", [])]
    results = json.dumps(run.results)
    for secret in list(secrets) + graph.issued_tokens() + assertions:
        assert secret and secret not in run.stdout and secret not in results, "a credential leaked into the output"


# one test per credential kind: each reads and changes devices, at -vvvv, and shows no credential


def test_client_secret(graph, signin):
    device_id = a_windows_device(graph)
    run = signin(read_and_change(device_id), verbosity=4, extra_env={"AZURE_CLIENT_SECRET": graph.client_secret})
    assert_read_and_changed(run, graph, device_id)
    forms = token_requests(graph)
    assert forms and all(form["client_secret"] == [graph.client_secret] and "client_assertion" not in form
                         for form in forms)
    assert graph_callers(graph) == {graph.client_id}
    assert_no_credential_in(run, graph, graph.client_secret)


def test_certificate(graph, signin, tmp_path):
    pem_path, certificate = make_test_certificate(tmp_path)
    graph.register_certificate(certificate)
    device_id = a_windows_device(graph)
    run = signin(read_and_change(device_id, client_certificate_path=pem_path), verbosity=4)
    assert_read_and_changed(run, graph, device_id)
    forms = token_requests(graph)
    assert forms and all("client_secret" not in form for form in forms)
    assert all(form["client_assertion_type"] == ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]
               for form in forms)
    assert all("x5t#S256" in jwt_header(form["client_assertion"][0]) for form in forms)
    assert graph_callers(graph) == {graph.client_id}
    with open(pem_path) as handle:
        key_lines = [line for line in handle.read().splitlines() if line and not line.startswith("-----")]
    assert_no_credential_in(run, graph, *key_lines[:3])


def write_certificate_with_key(directory, key):
    """A PEM file of `key` and a self-signed certificate of it; returns (path, the key's base64 lines)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fleetguard-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now)
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .sign(key, None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    path = directory / "client.pem"
    path.write_bytes(key_pem + certificate.public_bytes(serialization.Encoding.PEM))
    return str(path), [line for line in key_pem.decode().splitlines() if line and not line.startswith("-----")]


@pytest.mark.parametrize("kind, named", [("ec", "an EC (secp256r1) key"), ("ed25519", "an Ed25519 key")])
def test_a_certificate_whose_key_is_not_rsa_fails_before_any_request_naming_the_key_type(graph, signin, tmp_path, kind,
                                                                                         named):
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    key = ec.generate_private_key(ec.SECP256R1()) if kind == "ec" else ed25519.Ed25519PrivateKey.generate()
    pem_path, key_lines = write_certificate_with_key(tmp_path, key)
    run = signin(read_and_change(a_windows_device(graph), client_certificate_path=pem_path), verbosity=4)
    assert run.returncode != 0
    message = run.task(INFO_TASK)["result"]["msg"]
    assert "client_certificate_path" in message and named in message and "RSA" in message, message
    assert "Traceback" not in run.stdout and graph.wire.entries() == []
    assert not any(line in run.stdout for line in key_lines), "the private key leaked into the output"


def test_federated_token_file_as_a_kubernetes_node_injects_it(graph, signin, tmp_path):
    token_file = tmp_path / "azure-identity-token"
    federated_token = graph.mint_federated_token(path=token_file)
    device_id = a_windows_device(graph)
    run = signin(read_and_change(device_id), verbosity=4, extra_env=graph.workload_identity_environment(token_file))
    assert_read_and_changed(run, graph, device_id)
    forms = token_requests(graph)
    assert forms and all(form["client_assertion"] == [federated_token] and "client_secret" not in form
                         for form in forms)
    assert graph_callers(graph) == {graph.client_id}
    assert_no_credential_in(run, graph, federated_token)


@pytest.mark.parametrize("minted, code", [
    ({"subject": "system:serviceaccount:awx:default"}, "AADSTS700213"),
    ({"issued_at_offset": -7200, "lifetime": 3600}, "AADSTS700024"),
])
def test_a_refused_federated_token_fails_with_entras_code_and_no_write(graph, signin, tmp_path, minted, code):
    token_file = tmp_path / "token"
    offset = minted.pop("issued_at_offset", None)
    if offset is not None:
        minted["issued_at"] = time.time() + offset
    federated_token = graph.mint_federated_token(path=token_file, **minted)
    run = signin(read_and_change(a_windows_device(graph)), verbosity=4,
                 extra_env=graph.workload_identity_environment(token_file))
    assert run.returncode != 0
    message = run.task(INFO_TASK)["result"]["msg"]
    assert "federated token" in message and code in message, message
    assert [entry for entry in graph.wire.entries() if entry["method"] in ("PATCH", "DELETE")] == []
    assert_no_credential_in(run, graph, federated_token)


def test_managed_identity_through_identity_endpoint_and_header(graph, signin):
    device_id = a_windows_device(graph)
    run = signin(read_and_change(device_id), verbosity=4,
                 extra_env=dict(graph.managed_identity_environment("app_service"), AZURE_CLIENT_ID=""))
    assert_read_and_changed(run, graph, device_id)
    calls = identity_requests(graph, "/msi/token")
    assert calls and token_requests(graph) == []
    assert all(call["query"]["api-version"] == "2019-08-01" and "client_id" not in call["query"] for call in calls)
    assert graph_callers(graph) == {graph.system_assigned_identity["client_id"]}
    assert_no_credential_in(run, graph, graph.identity_header)


def test_user_assigned_managed_identity_through_the_metadata_endpoint(graph, signin):
    identity = graph.user_assigned_identities[0]
    device_id = a_windows_device(graph)
    env = dict(graph.managed_identity_environment("imds"), AZURE_CLIENT_ID=identity["client_id"])
    run = signin(read_and_change(device_id, auth_source="managed_identity"), verbosity=4, extra_env=env)
    assert_read_and_changed(run, graph, device_id)
    calls = identity_requests(graph, "/metadata/identity/oauth2/token")
    assert calls and token_requests(graph) == []
    assert all(call["headers"].get("Metadata") == "true" and call["query"]["client_id"] == identity["client_id"]
               and call["query"]["api-version"] == "2018-02-01" for call in calls)
    assert graph_callers(graph) == {identity["client_id"]}
    assert_no_credential_in(run, graph)


def test_an_unknown_user_assigned_identity_is_refused_by_the_metadata_endpoint(graph, signin):
    env = dict(graph.managed_identity_environment("imds"), AZURE_CLIENT_ID="11111111-2222-3333-4444-555555555555")
    run = signin(read_and_change(a_windows_device(graph), auth_source="managed_identity"), extra_env=env)
    assert run.returncode != 0
    assert "Identity not found" in run.task(INFO_TASK)["result"]["msg"]
    assert [entry for entry in graph.wire.entries() if entry["path"].startswith("/v1.0/")] == []


IDENTITY_CALL = {"method": "GET", "path_regex": r"/msi/token$"}


@pytest.mark.parametrize("body, content_type, named", [
    ("<html><body><h1>Sign in to the proxy</h1></body></html>", "text/html",
     "answered HTTP 200 with a body that is not JSON, which this collection does not understand: check IDENTITY_ENDPOINT"),
    ('{"access_token": "eyJ0eXAiOiJKV1QifQ.e30.c2ln", "expires_on": "NaN"}', "application/json",
     "answered HTTP 200, but its expires_on 'NaN' is not a time"),
    ('{"access_token": "eyJ0eXAiOiJKV1QifQ.e30.c2ln", "expires_in": 1e999}', "application/json",
     "answered HTTP 200, but its expires_in inf is not a number of seconds"),
], ids=["html", "expires-on-nan", "expires-in-1e999"])
def test_a_managed_identity_answer_of_the_wrong_shape_is_named_not_taken_for_a_refusal(graph, signin, body,
                                                                                       content_type, named):
    graph.faults.add(action="answer", match=IDENTITY_CALL, body=body, content_type=content_type)
    run = signin(read_and_change(a_windows_device(graph)), verbosity=4,
                 extra_env=dict(graph.managed_identity_environment("app_service"), AZURE_CLIENT_ID=""))
    assert run.returncode != 0
    message = run.task(INFO_TASK)["result"]["msg"]
    assert named in message and "refused" not in message, message
    assert "Traceback" not in run.stdout and "eyJ0eXAiOiJKV1QifQ.e30.c2ln" not in run.stdout
    assert [entry for entry in graph.wire.entries() if entry["path"].startswith("/v1.0/")] == []
    assert_no_credential_in(run, graph, graph.identity_header)


def test_a_bare_access_token(graph, signin):
    access_token = graph.issue_token()
    device_id = a_windows_device(graph)
    run = signin(read_and_change(device_id), verbosity=4, extra_env={"MSGRAPH_ACCESS_TOKEN": access_token})
    assert_read_and_changed(run, graph, device_id)
    assert token_requests(graph) == [] and graph.issued_tokens() == [access_token]
    assert graph_callers(graph) == {graph.client_id}
    assert_no_credential_in(run, graph, access_token)


# the national cloud, as AWX's Azure credential injects it


def test_us_government_cloud_with_endpoint_overrides_pointing_at_the_sandbox(graph, signin):
    device_id = a_windows_device(graph)
    env = {"AZURE_CLOUD_ENVIRONMENT": "AzureUSGovernment", "AZURE_CLIENT_SECRET": graph.client_secret}
    run = signin(read_and_change(device_id), extra_env=env)
    assert_read_and_changed(run, graph, device_id)
    assert all(form["scope"] == [graph.url + "/.default"] for form in token_requests(graph))


def test_an_unknown_cloud_name_fails_before_any_request_naming_the_accepted_ones(graph, signin):
    env = {"AZURE_CLOUD_ENVIRONMENT": "AzureGermanCloud", "AZURE_CLIENT_SECRET": graph.client_secret}
    run = signin(read_and_change(a_windows_device(graph)), extra_env=env)
    assert run.returncode != 0
    message = run.task(INFO_TASK)["result"]["msg"]
    assert "AzureGermanCloud" in message
    for accepted in ("global", "usgov", "china", "AzureCloud", "AzureUSGovernment", "AzureChinaCloud"):
        assert accepted in message, message
    assert graph.wire.entries() == []


# the inventory plugin, as a project-sourced inventory on a Kubernetes execution node runs it


def test_inventory_plugin_with_a_federated_token(graph, signin, tmp_path):
    token_file = tmp_path / "azure-identity-token"
    federated_token = graph.mint_federated_token(path=token_file)
    source = tmp_path / "tenant.msgraph_devices.yml"
    source.write_text(textwrap.dedent("""
        plugin: fleetguard.devices.msgraph_devices
        keyed_groups:
          - key: msgraph_operating_system | lower
            prefix: msgraph_os
    """))
    env = dict(signin.env, ANSIBLE_INVENTORY_UNPARSED_FAILED="1", **graph.workload_identity_environment(token_file))
    command = [os.path.join(os.path.dirname(sys.executable), "ansible-inventory"), "-i", str(source), "--list",
               "-vvvv"]
    proc = subprocess.run(command, env=env, cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    listing = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert len(listing["_meta"]["hostvars"]) == len(graph.devices)
    assert listing["msgraph_os_windows"]["hosts"]
    forms = token_requests(graph)
    assert forms and all(form["client_assertion"] == [federated_token] for form in forms)
    for secret in [federated_token] + graph.issued_tokens():
        assert secret not in proc.stdout and secret not in proc.stderr, "a credential leaked into the output"
