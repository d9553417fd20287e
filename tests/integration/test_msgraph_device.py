"""fleetguard.devices.msgraph_device, run by real ansible-playbook against the Graph sandbox."""

import json

import pytest

TASK = "set devices"


def device_task(selector, **desired):
    args = dict(selector)
    args.update(desired)
    return "- name: %s\n  fleetguard.devices.msgraph_device: %s\n  register: out\n" % (TASK, json.dumps(args))


def writes(sandbox):
    """Every PATCH or DELETE the sandbox received, top-level or inside a batch."""
    return [e for e in sandbox.wire.entries() if e["method"] in ("PATCH", "DELETE")]


def applied_patches(sandbox):
    return [e for e in sandbox.wire.entries(method="PATCH") if e["status"] in (200, 204)]


def http_calls(sandbox):
    """Top-level HTTP requests (batch parts excluded)."""
    return [e for e in sandbox.wire.entries() if e.get("batch_item") is None]


def devices_where(sandbox, count, **fields):
    with sandbox.lock:
        chosen = [d for oid, d in sorted(sandbox.devices.items())
                  if all(d.get(k) == v for k, v in fields.items())]
    assert len(chosen) >= count, "the seed has too few devices with %s" % fields
    return [dict(d) for d in chosen[:count]]


def windows(sandbox, count, **fields):
    return devices_where(sandbox, count, operatingSystem="Windows", **fields)


def managed(device):
    return {k: device.get(k) for k in ("id", "accountEnabled", "extensionAttributes")}


def test_check_then_real_then_rerun_agree_and_check_mode_sends_no_patch(graph, playbook):
    ids = [d["id"] for d in windows(graph, 3, accountEnabled=True)]
    tasks = device_task({"id": ids}, account_enabled=False,
                        extension_attributes={"extensionAttribute15": "quarantine:INC-1"})

    check = playbook(tasks, check=True, diff=True)
    assert check.returncode == 0, check.stdout
    assert writes(graph) == [], "check mode sent a write"
    predicted = check.task(TASK)["result"]
    assert predicted["changed_devices"] == ids

    real = playbook(tasks)
    assert real.returncode == 0, real.stdout
    done = real.task(TASK)["result"]
    assert done["changed_devices"] == ids
    assert [managed(d) for d in done["devices"]] == [managed(d) for d in predicted["devices"]]
    for oid in ids:
        assert graph.devices[oid]["accountEnabled"] is False
        assert graph.devices[oid]["extensionAttributes"]["extensionAttribute15"] == "quarantine:INC-1"
    # PATCH carried only what differed.
    assert all(set(e["body"]) == {"accountEnabled", "extensionAttributes"} for e in applied_patches(graph))

    again = playbook(tasks)
    assert again.returncode == 0
    assert again.task(TASK)["result"]["changed"] is False
    assert len(writes(graph)) == 3, "the re-run wrote again"


def test_diff_shows_the_managed_properties(graph, playbook):
    device = windows(graph, 1, accountEnabled=True)[0]
    run = playbook(device_task({"device_id": [device["deviceId"]]}, account_enabled=False), check=True, diff=True)
    assert run.returncode == 0, run.stdout
    (diff,) = run.task(TASK)["result"]["diff"]
    assert diff == {"before": {"accountEnabled": True}, "after": {"accountEnabled": False},
                    "before_header": "device %s (%s)" % (device["id"], device["displayName"]),
                    "after_header": "device %s (%s)" % (device["id"], device["displayName"])}


def test_a_hundred_devices_take_a_handful_of_batched_calls(graph, playbook):
    chosen = devices_where(graph, 100)
    ids = [d["id"] for d in chosen]
    run = playbook(device_task({"id": ids}, extension_attributes={"extensionAttribute14": "fleet-2026"}))
    assert run.returncode == 0, run.stdout
    result = run.task(TASK)["result"]
    assert result["changed_devices"] == ids
    assert [d["id"] for d in result["devices"]] == ids
    calls = http_calls(graph)
    token_calls = [e for e in calls if "oauth2" in e["path"]]
    batches = [e for e in calls if e["path"].endswith("/$batch")]
    # One token; 5 batches of reads, 5 of PATCHes (204: no read-back needed); nothing outside $batch.
    assert len(token_calls) == 1
    assert len(batches) == 10
    assert len(calls) == 11
    assert all(d["extensionAttributes"]["extensionAttribute14"] == "fleet-2026" for d in result["devices"])
    assert len(applied_patches(graph)) == 100


def test_display_names_that_match_nothing_or_two_devices_fail_before_any_write(graph, playbook):
    first, second = windows(graph, 2)
    twin = graph.add_device(displayName=second["displayName"], operatingSystem="Windows")
    run = playbook(device_task({"display_name": [first["displayName"], second["displayName"], "NO-SUCH-PC"]},
                               account_enabled=False))
    assert run.returncode != 0
    result = run.task(TASK)["result"]
    assert writes(graph) == []
    reasons = {p["value"]: p for p in result["problems"]}
    assert reasons["NO-SUCH-PC"]["reason"] == "missing"
    assert sorted(reasons[second["displayName"]]["candidates"]) == sorted([second["id"], twin["id"]])
    assert twin["id"] in result["msg"] and "NO-SUCH-PC" in result["msg"]


def test_a_display_name_with_a_quote_is_escaped(graph, playbook):
    device = graph.add_device(displayName="Bob's iPhone", operatingSystem="iOS")
    graph.add_device(displayName="Bob", operatingSystem="Windows")
    run = playbook(device_task({"display_name": ["Bob's iPhone"]},
                               extension_attributes={"extensionAttribute15": "quarantine:INC-2"}))
    assert run.returncode == 0, run.stdout
    assert run.task(TASK)["result"]["changed_devices"] == [device["id"]]
    lookups = [e for e in graph.wire.entries(method="GET") if e["query"].get("$filter")]
    assert lookups[0]["query"]["$filter"] == "displayName eq 'Bob''s iPhone'"


def test_app_only_callers_cannot_disable_non_windows_devices(graph, playbook):
    phone = devices_where(graph, 1, operatingSystem="iOS", accountEnabled=True)[0]
    pc = windows(graph, 1, accountEnabled=True)[0]
    run = playbook(device_task({"id": [pc["id"], phone["id"]]}, account_enabled=False))
    assert run.returncode != 0
    msg = run.task(TASK)["result"]["msg"]
    assert phone["id"] in msg and "runs iOS" in msg and "only extensionAttributes" in msg
    assert writes(graph) == [], "nothing is written when one device cannot be"


def test_a_delegated_token_may_disable_non_windows_devices(graph, playbook):
    phone = devices_where(graph, 1, operatingSystem="iOS", accountEnabled=True)[0]
    token = graph.issue_token(app=False)
    run = playbook(device_task({"id": [phone["id"]]}, account_enabled=False, access_token=token))
    assert run.returncode == 0, run.stdout
    assert graph.devices[phone["id"]]["accountEnabled"] is False


def test_a_429_storm_inside_batches_converges(graph, playbook):
    ids = [d["id"] for d in windows(graph, 30)]
    graph.faults.add(action="status", status=429, retry_after=1, match={"method": "PATCH", "batch_item": True},
                     times=12)
    graph.faults.add(action="status", status=429, retry_after=1, match={"method": "GET", "batch_item": True},
                     times=5)
    run = playbook(device_task({"id": ids}, extension_attributes={"extensionAttribute13": "storm"}))
    assert run.returncode == 0, run.stdout
    assert run.task(TASK)["result"]["changed_devices"] == ids
    assert len(applied_patches(graph)) == 30
    assert all(graph.devices[oid]["extensionAttributes"]["extensionAttribute13"] == "storm" for oid in ids)


def test_the_servers_own_write_throttling_is_respected(graph, playbook):
    graph.rate_limiter.configure(limits={"app": (10, 2.0)})
    ids = [d["id"] for d in windows(graph, 25)]
    run = playbook(device_task({"id": ids}, extension_attributes={"extensionAttribute12": "paced"}))
    assert run.returncode == 0, run.stdout
    assert len(applied_patches(graph)) == 25


@pytest.mark.parametrize("fault", [
    dict(action="status", status=503),
    dict(action="reset"),
    dict(action="reset_after_apply"),
])
def test_lost_or_failed_writes_are_reread_and_never_written_twice(graph, playbook, fault):
    ids = [d["id"] for d in windows(graph, 4, accountEnabled=True)]
    graph.faults.add(match={"method": "PATCH", "batch_item": True}, times=1, **fault)
    # A lost answer is settled by reads for max(30 s, 3 x timeout) before a resend: keep that to 30 s here.
    run = playbook(device_task({"id": ids}, account_enabled=False, timeout=5))
    assert run.returncode == 0, run.stdout
    assert run.task(TASK)["result"]["changed_devices"] == ids
    patched = [e["path"].rsplit("/", 1)[-1] for e in applied_patches(graph)]
    assert sorted(patched) == sorted(ids), "a device was written twice or not at all"
    assert all(graph.devices[oid]["accountEnabled"] is False for oid in ids)


def test_token_expiry_mid_run_is_refreshed(graph, playbook):
    ids = [d["id"] for d in windows(graph, 45)]
    graph.faults.add(action="expire_tokens", match={"path_regex": r"/\$batch$"}, skip=3, times=1)
    run = playbook(device_task({"id": ids}, extension_attributes={"extensionAttribute11": "renewed"}))
    assert run.returncode == 0, run.stdout
    assert run.task(TASK)["result"]["changed_devices"] == ids
    assert len([e for e in http_calls(graph) if "oauth2" in e["path"]]) == 2


def test_token_expiry_in_the_middle_of_a_batch_is_refreshed(graph, playbook):
    ids = [d["id"] for d in windows(graph, 12)]
    graph.faults.add(action="expire_tokens", match={"method": "PATCH", "batch_item": True}, skip=5, times=1)
    run = playbook(device_task({"id": ids}, extension_attributes={"extensionAttribute10": "mid-batch"}))
    assert run.returncode == 0, run.stdout
    assert run.task(TASK)["result"]["changed_devices"] == ids
    assert len(applied_patches(graph)) == 12


def test_extension_attribute_mistakes_fail_before_any_request(graph, playbook):
    device = windows(graph, 1)[0]
    for bad, message in (({"extensionAttribute16": "x"}, "not one of extensionAttribute1..extensionAttribute15"),
                         ({"extensionAttribute1": "x" * 1025}, "at most 1024"),
                         ({"extensionAttribute1": 5}, "must be a string or null")):
        graph.wire.clear()
        run = playbook(device_task({"id": [device["id"]]}, extension_attributes=bad))
        assert run.returncode != 0
        assert message in run.task(TASK)["result"]["msg"]
        assert [e for e in graph.wire.entries() if "oauth2" not in e["path"]] == []


def test_null_clears_an_extension_attribute_and_other_keys_are_left_alone(graph, playbook):
    device = windows(graph, 1)[0]
    with graph.lock:
        graph.devices[device["id"]]["extensionAttributes"].update(extensionAttribute1="keep", extensionAttribute2="drop")
    run = playbook(device_task({"id": [device["id"]]}, extension_attributes={"extensionAttribute2": None}))
    assert run.returncode == 0, run.stdout
    attributes = graph.devices[device["id"]]["extensionAttributes"]
    assert attributes["extensionAttribute1"] == "keep" and attributes["extensionAttribute2"] is None
    (patch,) = applied_patches(graph)
    assert patch["body"] == {"extensionAttributes": {"extensionAttribute2": None}}


@pytest.mark.parametrize("evil", ["../../users", "x/../devices", "a?b=c", "%2e%2e", "not-a-guid"])
def test_a_malformed_id_never_reaches_the_api(graph, playbook, evil):
    good = windows(graph, 1)[0]["id"]
    run = playbook(device_task({"id": [good, evil]}, account_enabled=False))
    assert run.returncode != 0
    assert "is not a GUID" in run.task(TASK)["result"]["msg"]
    assert [e for e in graph.wire.entries() if "oauth2" not in e["path"]] == []


def test_state_absent_deletes_and_already_gone_is_no_change(graph, playbook):
    ids = [d["id"] for d in windows(graph, 3)]
    tasks = "- name: %s\n  fleetguard.devices.msgraph_device:\n    id: %s\n    state: absent\n  register: out\n" % (
        TASK, json.dumps(ids))
    check = playbook(tasks, check=True)
    assert check.task(TASK)["result"]["changed_devices"] == ids and writes(graph) == []
    real = playbook(tasks)
    assert real.returncode == 0, real.stdout
    assert all(oid not in graph.devices for oid in ids)
    again = playbook(tasks)
    assert again.returncode == 0 and again.task(TASK)["result"]["changed"] is False


def test_beta_user_scoped_devices_set_rome_properties(graph, playbook):
    with graph.lock:
        user_id, device_ids = next((u, d) for u, d in sorted(graph.user_devices.items()) if d)
        upn = graph.users[user_id]["userPrincipalName"]
    device_id = device_ids[0]
    token = graph.issue_token(app=False, user=user_id)
    tasks = device_task({"id": [device_id]}, api_version="beta", user="me", access_token=token,
                        name="Quarantined laptop", kind="Laptop")
    run = playbook(tasks)
    assert run.returncode == 0, run.stdout
    (device,) = run.task(TASK)["result"]["devices"]
    assert device["name"] == "Quarantined laptop" and device["kind"] == "Laptop"
    patches = applied_patches(graph)
    assert [e["path"] for e in patches] == ["/beta/me/devices/%s" % device_id]
    assert patches[0]["status"] == 200
    again = playbook(device_task({"id": [device_id]}, api_version="beta", user=upn, access_token=token,
                                 name="Quarantined laptop"))
    assert again.returncode == 0, again.stdout
    assert again.task(TASK)["result"]["changed"] is False


def test_rome_properties_need_beta_and_a_user(graph, playbook):
    device = windows(graph, 1)[0]
    run = playbook(device_task({"id": [device["id"]]}, name="x"))
    assert run.returncode != 0
    assert "can only be set with api_version beta and user" in run.task(TASK)["result"]["msg"]


def test_secrets_never_reach_vvvv_output(graph, playbook):
    device = windows(graph, 1, accountEnabled=True)[0]
    graph.faults.add(action="expire_tokens", match={"path_regex": r"/\$batch$"}, skip=1, times=1)
    run = playbook(device_task({"id": [device["id"]]}, account_enabled=False), verbosity=4, diff=True)
    assert run.returncode == 0, run.stdout
    tokens = graph.issued_tokens()
    assert len(tokens) == 2
    for secret in [graph.client_secret] + tokens:
        assert secret not in run.stdout
        assert secret not in json.dumps(run.results)
    assert "Bearer" not in run.stdout


def test_certificate_credentials_work_end_to_end(graph, playbook, tmp_path):
    from sandbox.msgraph_auth import make_test_certificate

    pem_path, certificate = make_test_certificate(tmp_path)
    graph.register_certificate(certificate)
    device = windows(graph, 1, accountEnabled=True)[0]
    run = playbook(device_task({"id": [device["id"]]}, account_enabled=False),
                   extra_env={"AZURE_CLIENT_SECRET": "", "AZURE_CLIENT_CERTIFICATE_PATH": pem_path})
    assert run.returncode == 0, run.stdout
    (token_call,) = [e for e in http_calls(graph) if "oauth2" in e["path"]]
    assert "client_assertion" in str(token_call["body"]) and "client_secret" not in str(token_call["body"])
    assert graph.devices[device["id"]]["accountEnabled"] is False
