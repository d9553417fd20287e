"""The roles hand *_msgraph_connection to the modules through module_defaults: a role run with a connection option
the modules take (auth_source, tenant_size, federated_token_file, cloud by AWX's name) passes the role's argument
validation and reaches the modules; a cloud no module knows is refused by the module, before any request."""

import pytest

ROLES = ("quarantine", "release", "audit")

# Every Graph connection option the role specs once lacked, with values the sandbox login still works with.
GRAPH_CONNECTION = dict(auth_source="client_secret", tenant_size="large", cloud="AzureCloud")


def windows_device(graph):
    """Display name of an enabled Windows device whose name no other device has."""
    with graph.lock:
        names = [d["displayName"] for d in graph.devices.values()]
        return sorted(d["displayName"] for d in graph.devices.values()
                      if d.get("operatingSystem") == "Windows" and d["accountEnabled"] and names.count(d["displayName"]) == 1)[0]


def role_vars(role, device, connection, tmp_path):
    values = {"%s_msgraph_connection" % role: connection}
    if role == "quarantine":
        values.update(quarantine_reason="INC-CONN", quarantine_msgraph_display_names=[device])
    elif role == "release":
        values.update(release_msgraph_display_names=[device], release_force=True)
    else:
        values.update(audit_baseline=[dict(display_name=device, account_enabled=True)],
                      audit_report_dir=str(tmp_path / "reports"))
    return values


def role_task(role):
    return "- name: Run the role\n  ansible.builtin.include_role:\n    name: fleetguard.devices.%s\n" % role


def token_requests(graph):
    return [entry for entry in graph.wire.entries(method="POST") if entry["path"].endswith("/oauth2/v2.0/token")]


@pytest.mark.parametrize("role", ROLES)
def test_role_takes_auth_source_tenant_size_and_the_awx_cloud_name_and_passes_them_to_the_modules(
        playbook, graph, tmp_path, role):
    device = windows_device(graph)

    run = playbook(role_task(role), check=True, play_vars=role_vars(role, device, GRAPH_CONNECTION, tmp_path),
                   module_defaults=False)

    assert run.returncode == 0, run.stdout[-3000:]
    assert not [entry for entry in run.results if entry["status"] == "failed"]
    # The client secret login that auth_source=client_secret forces; check mode wrote nothing.
    assert token_requests(graph)
    assert not [entry for entry in graph.wire.entries() if entry["method"] in ("PATCH", "DELETE")]


def test_role_leaves_the_cloud_to_the_module_which_refuses_an_unknown_one_before_any_request(playbook, graph, tmp_path):
    device = windows_device(graph)
    connection = dict(cloud="mars", graph_endpoint=None, authority_host=None)

    run = playbook(role_task("quarantine"), check=True, module_defaults=False,
                   play_vars=role_vars("quarantine", device, connection, tmp_path),
                   extra_env={"MSGRAPH_ENDPOINT": "", "AZURE_AUTHORITY_HOST": ""})

    assert run.returncode != 0
    # Argument validation passed: what failed is the role's stop after the module's check-mode pass.
    failed = [entry for entry in run.results if entry["status"] == "failed"]
    assert [entry["task"] for entry in failed] == [
        "fleetguard.devices.quarantine : Stop before any write if an identifier is missing or ambiguous"], \
        run.stdout[-3000:]
    assert "Graph: cloud 'mars' is not a national cloud" in failed[0]["result"]["msg"]
    assert "AzureCloud" in failed[0]["result"]["msg"]
    assert len(graph.wire) == 0
