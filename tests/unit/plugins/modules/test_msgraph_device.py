"""run() of msgraph_device with a real client talking to the Graph sandbox."""

import pytest

from ansible_collections.fleetguard.devices.plugins.module_utils import device_task
from ansible_collections.fleetguard.devices.plugins.module_utils.errors import InputError, LookupFailure
from ansible_collections.fleetguard.devices.plugins.modules import msgraph_device


def params(**kwargs):
    base = dict(id=None, device_id=None, display_name=None, account_enabled=None, new_display_name=None,
                operating_system=None, operating_system_version=None, is_compliant=None, is_managed=None,
                extension_attributes=None, name=None, manufacturer=None, model=None, kind=None, status=None,
                platform=None, state="present", api_version="v1.0", user=None)
    base.update(kwargs)
    return base


def windows_ids(sandbox, count, **fields):
    with sandbox.lock:
        ids = [oid for oid, d in sorted(sandbox.devices.items())
               if d["operatingSystem"] == "Windows" and all(d.get(k) == v for k, v in fields.items())]
    assert len(ids) >= count
    return ids[:count]


def patches(sandbox):
    return sandbox.wire.entries(method="PATCH")


def test_check_mode_predicts_and_sends_only_reads(fake_module, graph_sandbox, graph_client):
    ids = windows_ids(graph_sandbox, 2, accountEnabled=True)
    module = fake_module(params(id=ids, account_enabled=False), check_mode=True, diff=True)
    result = msgraph_device.run(module, graph_client)
    assert not result["failed"] and result["changed_devices"] == ids
    assert [d["accountEnabled"] for d in result["devices"]] == [False, False]
    assert patches(graph_sandbox) == []
    assert {e["method"] for e in graph_sandbox.wire.entries()} <= {"GET", "POST"}


def test_patch_carries_only_what_differs(fake_module, graph_sandbox, graph_client):
    oid = windows_ids(graph_sandbox, 1, accountEnabled=True)[0]
    name = graph_sandbox.devices[oid]["displayName"]
    module = fake_module(params(id=[oid], account_enabled=False, new_display_name=name,
                                extension_attributes={"extensionattribute3": "x"}))
    result = msgraph_device.run(module, graph_client)
    (patch,) = patches(graph_sandbox)
    assert patch["body"] == {"accountEnabled": False, "extensionAttributes": {"extensionAttribute3": "x"}}
    assert result["devices"][0]["extensionAttributes"]["extensionAttribute3"] == "x"


def test_a_device_named_twice_is_written_once(fake_module, graph_sandbox, graph_client):
    oid = windows_ids(graph_sandbox, 1, accountEnabled=True)[0]
    device_id = graph_sandbox.devices[oid]["deviceId"]
    module = fake_module(params(id=[oid, oid], account_enabled=False))
    result = msgraph_device.run(module, graph_client)
    assert len(patches(graph_sandbox)) == 1
    assert [o["outcome"] for o in result["outcomes"]] == ["changed", "changed"]
    module = fake_module(params(device_id=[device_id], account_enabled=False))
    assert msgraph_device.run(module, graph_client)["changed"] is False


def test_a_partly_failed_run_names_every_outcome_and_a_second_run_finishes(fake_module, graph_sandbox, graph_client):
    ids = windows_ids(graph_sandbox, 4, accountEnabled=True)
    broken = "/devices/%s$" % ids[1]
    graph_sandbox.faults.add(action="status", status=500, match={"method": "PATCH", "path_regex": broken}, times=3)
    module = fake_module(params(id=ids, account_enabled=False))
    result = msgraph_device.run(module, graph_client)
    assert result["failed"]
    assert [o["outcome"] for o in result["outcomes"]] == ["changed", "failed", "changed", "changed"]
    assert "HTTP 500" in result["outcomes"][1]["reason"] and "gave up after 3 attempts" in result["outcomes"][1]["reason"]
    assert result["summary"]["failed"] == 1 and ids[1] in result["msg"]
    # Every failed PATCH was followed by a read before the next one.
    calls = [e["method"] for e in graph_sandbox.wire.entries(path_regex=broken)]
    assert calls[1:] == ["PATCH", "GET", "PATCH", "GET", "PATCH", "GET"]
    result = msgraph_device.run(module, graph_client)
    assert not result["failed"]
    assert [o["outcome"] for o in result["outcomes"]] == ["unchanged", "changed", "unchanged", "unchanged"]


def test_a_forbidden_property_is_a_per_device_failure(fake_module, graph_sandbox, graph_client):
    ids = windows_ids(graph_sandbox, 2)
    graph_sandbox.faults.add(action="status", status=403, match={"method": "PATCH", "path_regex": ids[0] + "$"},
                             code="Authorization_RequestDenied", message="Insufficient privileges to complete the operation.")
    result = msgraph_device.run(fake_module(params(id=ids, operating_system_version="10.0.99")),
                                graph_client)
    assert result["failed"]
    assert "Insufficient privileges" in result["outcomes"][0]["reason"]
    assert "Authorization_RequestDenied" in result["outcomes"][0]["reason"]
    assert result["outcomes"][1]["outcome"] == "changed"


def test_absent_with_unknown_names_is_no_change(fake_module, graph_sandbox, graph_client):
    result = msgraph_device.run(fake_module(params(display_name=["NOPE"], state="absent")), graph_client)
    assert not result["failed"] and not result["changed"]


def test_present_needs_something_to_set(fake_module, graph_sandbox, graph_client):
    with pytest.raises(InputError):
        msgraph_device.run(fake_module(params(id=windows_ids(graph_sandbox, 1))), graph_client)


def test_an_empty_extension_attribute_dict_sets_nothing(fake_module, graph_sandbox, graph_client):
    with pytest.raises(InputError):
        msgraph_device.run(fake_module(params(id=windows_ids(graph_sandbox, 1), extension_attributes={})),
                           graph_client)


def test_user_needs_beta(fake_module, graph_client):
    with pytest.raises(InputError) as caught:
        msgraph_device.run(fake_module(params(id=["x"], user="me", name="n")), graph_client)
    assert "beta" in str(caught.value)


def test_missing_ids_fail_before_any_write(fake_module, graph_sandbox, graph_client):
    ids = windows_ids(graph_sandbox, 1) + ["00000000-0000-0000-0000-000000000000"]
    with pytest.raises(LookupFailure) as caught:
        msgraph_device.run(fake_module(params(id=ids, account_enabled=False)), graph_client)
    assert caught.value.problems[0]["value"] == ids[1]
    assert patches(graph_sandbox) == []


def test_absent_with_properties_to_set_is_refused_before_any_request(fake_module, graph_sandbox, graph_client):
    ids = windows_ids(graph_sandbox, 1)
    with pytest.raises(InputError) as caught:
        msgraph_device.run(fake_module(params(id=ids, state="absent", account_enabled=False)), graph_client)
    assert "state=absent" in str(caught.value) and "accountEnabled" in str(caught.value)
    assert graph_sandbox.wire.entries() == []


@pytest.mark.parametrize("check_mode", [True, False])
def test_a_display_name_over_256_characters_fails_the_same_in_check_mode(fake_module, graph_sandbox, graph_client,
                                                                         check_mode):
    ids = windows_ids(graph_sandbox, 1)
    with pytest.raises(InputError) as caught:
        msgraph_device.run(fake_module(params(id=ids, new_display_name="x" * 257), check_mode=check_mode), graph_client)
    assert "257 characters" in str(caught.value) and "(257 characters)" in str(caught.value)
    assert graph_sandbox.wire.entries() == []


def test_an_empty_extension_attribute_equals_a_cleared_one(fake_module, graph_sandbox, graph_client):
    oid = windows_ids(graph_sandbox, 1)[0]
    module = fake_module(params(id=[oid], extension_attributes={"extensionAttribute9": ""}))
    msgraph_device.run(module, graph_client)
    assert graph_sandbox.devices[oid]["extensionAttributes"]["extensionAttribute9"] is None
    graph_sandbox.wire.clear()
    result = msgraph_device.run(module, graph_client)
    assert result["changed"] is False and patches(graph_sandbox) == []


def test_a_long_identifier_is_cut_in_the_message(fake_module, graph_sandbox, graph_client):
    with pytest.raises(InputError) as caught:
        msgraph_device.run(fake_module(params(id=["7" * 10000], account_enabled=False)), graph_client)
    assert "(10000 characters)" in str(caught.value) and len(str(caught.value)) < 300


def slow_client(sandbox, timeout, api_version="v1.0"):
    from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_client import GraphClient
    from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_credentials import ClientSecretCredential
    from ansible_collections.fleetguard.devices.plugins.module_utils.transport import HttpTransport

    credential = ClientSecretCredential(sandbox.url, sandbox.tenant_id, sandbox.client_id, sandbox.url + "/.default",
                                        secret=sandbox.client_secret)
    return GraphClient(HttpTransport(timeout=timeout, max_retries=3, backoff_base=0.001), sandbox.url,
                       credential=credential, api_version=api_version)


def test_a_write_answered_after_the_timeout_is_settled_by_reads_not_sent_again(fake_module, graph_sandbox):
    # The server applies the PATCH 1.5 s after the client stopped waiting: resending at once would write it twice.
    oid = windows_ids(graph_sandbox, 1, accountEnabled=True)[0]
    graph_sandbox.faults.add(action="latency", seconds=1.5, match={"method": "POST", "path_regex": r"\$batch$"},
                             skip=1, times=1)
    result = msgraph_device.run(fake_module(params(id=[oid], account_enabled=False)), slow_client(graph_sandbox, 0.5))
    assert not result["failed"] and result["outcomes"][0]["outcome"] == "changed"
    assert len(patches(graph_sandbox)) == 1
    assert graph_sandbox.devices[oid]["accountEnabled"] is False


def test_a_write_that_never_shows_is_resent_only_after_settling_then_reported_uncertain(
        fake_module, graph_sandbox, monkeypatch):
    from ansible_collections.fleetguard.devices.plugins.module_utils import settle

    monkeypatch.setattr(settle, "SETTLE_MIN", 0.6)
    monkeypatch.setattr(settle, "SETTLE_TIMEOUTS", 0)
    monkeypatch.setattr(settle, "SETTLE_POLL", 0.2)
    oid = windows_ids(graph_sandbox, 1, accountEnabled=True)[0]
    # Each PATCH drops the connection before it is applied: every answer is lost, no write ever shows.
    graph_sandbox.faults.add(action="reset", match={"method": "PATCH"}, times=3)
    result = msgraph_device.run(fake_module(params(id=[oid], account_enabled=False)), slow_client(graph_sandbox, 0.2))
    assert result["failed"] and result["outcomes"][0]["outcome"] == "uncertain"
    assert result["summary"]["uncertain"] == 1 and "may still land" in result["outcomes"][0]["reason"]
    assert "client-request-id" in result["outcomes"][0]["reason"]
    calls = [e["method"] for e in graph_sandbox.wire.entries(path_regex=oid)]
    # Between two PATCHes, reads for the settle time (0.6 s polled every 0.2 s), never a PATCH right after a loss.
    gaps = [len(run) for run in "".join("P" if m == "PATCH" else "G" for m in calls).split("P")[1:-1]]
    assert calls.count("PATCH") == 3 and all(gap >= 3 for gap in gaps)


def test_batches_in_flight_together_each_get_their_own_answers(fake_module, graph_sandbox, graph_client):
    ids = sorted(graph_sandbox.devices)[:55]
    module = fake_module(params(id=ids, extension_attributes={"extensionAttribute13": "parallel"}))
    result = msgraph_device.run(module, graph_client)
    assert not result["failed"] and [d["id"] for d in result["devices"]] == ids
    assert all(d["extensionAttributes"]["extensionAttribute13"] == "parallel" for d in result["devices"])
    assert len(patches(graph_sandbox)) == 55


def owned_devices(sandbox, operating_system=None):
    with sandbox.lock:
        for user_id, owned in sorted(sandbox.user_devices.items()):
            matching = [d for d in owned if operating_system is None
                        or not sandbox.devices[d]["operatingSystem"].lower().startswith("windows")]
            if matching:
                return sandbox.users[user_id], matching
    raise AssertionError("no user owns such a device")


def test_beta_user_scoped_state_absent_deletes_through_the_users_collection(fake_module, graph_sandbox):
    user, owned = owned_devices(graph_sandbox)
    module = fake_module(params(id=[owned[0]], state="absent", api_version="beta", user=user["userPrincipalName"]))
    result = msgraph_device.run(module, slow_client(graph_sandbox, 5, "beta"))
    assert not result["failed"] and result["changed_devices"] == [owned[0]]
    assert owned[0] not in graph_sandbox.devices
    (delete,) = graph_sandbox.wire.entries(method="DELETE")
    assert "/beta/users/" in delete["path"]


def test_beta_user_scoped_rome_properties_are_not_refused_on_other_platforms(fake_module, graph_sandbox):
    # The app-only "extensionAttributes only on non-Windows" rule is the tenant collection's.
    user, owned = owned_devices(graph_sandbox, operating_system="not windows")
    module = fake_module(params(id=[owned[0]], name="Ana's phone", api_version="beta", user=user["id"]))
    result = msgraph_device.run(module, slow_client(graph_sandbox, 5, "beta"))
    assert not result["failed"] and result["devices"][0]["name"] == "Ana's phone"


@pytest.mark.parametrize("operating_system", ["Windows Server", None])
def test_check_mode_says_uncertain_where_graphs_app_only_rule_does_not_place_the_device(
        fake_module, graph_sandbox, graph_client, operating_system, monkeypatch):
    warned = []
    # Outside a module process ansible-core prints a warning at once; here it is recorded.
    monkeypatch.setattr(device_task, "warn", warned.append)
    server, pc = windows_ids(graph_sandbox, 2, accountEnabled=True)
    with graph_sandbox.lock:
        graph_sandbox.devices[server]["operatingSystem"] = operating_system
    check = msgraph_device.run(fake_module(params(id=[server, pc], account_enabled=False), check_mode=True), graph_client)
    assert [o["outcome"] for o in check["outcomes"]] == ["uncertain", "changed"]
    assert check["changed_devices"] == [pc], "check mode promised a write Graph may refuse"
    assert "does not say whether this one counts" in check["outcomes"][0]["reason"]
    # A prediction it cannot make does not fail an audit; it is said as a warning.
    assert not check["failed"]
    assert any(server in warning and "check mode cannot say" in warning for warning in warned)
    assert patches(graph_sandbox) == []

    # The real run sends it, and reports Graph's answer for that device; the other device is done.
    run = msgraph_device.run(fake_module(params(id=[server, pc], account_enabled=False)), graph_client)
    assert [o["outcome"] for o in run["outcomes"]] == ["failed", "changed"]
    assert "can be modified only on windows devices" in run["outcomes"][0]["reason"]
    assert graph_sandbox.devices[server]["accountEnabled"] is True


def test_check_mode_promises_a_tag_on_any_operating_system(fake_module, graph_sandbox, graph_client):
    server = windows_ids(graph_sandbox, 1)[0]
    with graph_sandbox.lock:
        graph_sandbox.devices[server]["operatingSystem"] = "Windows Server"
    tag = {"extensionAttribute4": "server"}
    check = msgraph_device.run(fake_module(params(id=[server], extension_attributes=tag), check_mode=True), graph_client)
    assert check["outcomes"][0]["outcome"] == "changed"
    run = msgraph_device.run(fake_module(params(id=[server], extension_attributes=tag)), graph_client)
    assert run["outcomes"][0]["outcome"] == "changed" and len(patches(graph_sandbox)) == 1
