"""run() of feishu_device_record with a real client talking to the Feishu sandbox."""

import pytest

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import InputError, LookupFailure
from ansible_collections.fleetguard.devices.plugins.modules import feishu_device_record


def params(**kwargs):
    base = dict(device_record_id=None, serial_number=None, device_name=None, device_status=None,
                device_ownership=None, state="present")
    base.update(kwargs)
    return base


def trusted_ids(sandbox, count):
    with sandbox.lock:
        ids = [rid for rid, rec in sorted(sandbox.records.items()) if rec.get("device_status", 0) == 1]
    return ids[:count]


def puts(sandbox):
    return sandbox.wire.entries(method="PUT")


def test_check_mode_predicts_without_writing(fake_module, feishu_sandbox, feishu_client):
    ids = trusted_ids(feishu_sandbox, 2)
    module = fake_module(params(device_record_id=ids, device_status="untrusted"), check_mode=True, diff=True)
    result = feishu_device_record.run(module, feishu_client)
    assert not result["failed"]
    assert result["changed"] and result["changed_records"] == ids
    assert [r["device_status"] for r in result["device_records"]] == [2, 2]
    assert [d["after"] for d in result["diff"]] == [{"device_status": "untrusted"}] * 2
    assert puts(feishu_sandbox) == []


def test_no_diff_key_without_diff_mode(fake_module, feishu_sandbox, feishu_client):
    ids = trusted_ids(feishu_sandbox, 1)
    result = feishu_device_record.run(fake_module(params(device_record_id=ids, device_status="untrusted")),
                                      feishu_client)
    assert "diff" not in result


def test_the_same_record_named_twice_is_written_once(fake_module, feishu_sandbox, feishu_client):
    rid = trusted_ids(feishu_sandbox, 1)[0]
    result = feishu_device_record.run(
        fake_module(params(device_record_id=[rid, rid], device_status="untrusted")), feishu_client)
    assert not result["failed"]
    assert len(puts(feishu_sandbox)) == 1
    assert [o["outcome"] for o in result["outcomes"]] == ["changed", "changed"]
    assert result["changed_records"] == [rid]


def test_a_partly_failed_run_names_every_outcome_and_a_second_run_finishes(fake_module, feishu_sandbox, feishu_client):
    ids = trusted_ids(feishu_sandbox, 4)
    broken = "/device_records/%s$" % ids[2]
    feishu_sandbox.faults.add(action="status", status=500, match={"method": "PUT", "path_regex": broken}, times=3)
    module = fake_module(params(device_record_id=ids, device_status="untrusted"))
    result = feishu_device_record.run(module, feishu_client)
    assert result["failed"]
    assert [o["outcome"] for o in result["outcomes"]] == ["changed", "changed", "failed", "changed"]
    assert "HTTP 500" in result["outcomes"][2]["reason"]
    assert ids[2] in result["msg"] and "1 of 4 device records" in result["msg"]
    assert result["summary"] == {"changed": 3, "unchanged": 0, "failed": 1, "not_attempted": 0, "uncertain": 0}
    # Each 500 was followed by a re-read before the next try: no blind resend.
    calls = [(e["method"]) for e in feishu_sandbox.wire.entries(path_regex=broken)]
    assert calls[-6:] == ["PUT", "GET", "PUT", "GET", "PUT", "GET"]

    result = feishu_device_record.run(module, feishu_client)
    assert not result["failed"]
    assert [o["outcome"] for o in result["outcomes"]] == ["unchanged", "unchanged", "changed", "unchanged"]


def test_credentials_lost_mid_run_leave_the_rest_not_attempted(fake_module, feishu_sandbox):
    from ansible_collections.fleetguard.devices.plugins.module_utils.feishu_client import FeishuClient
    from ansible_collections.fleetguard.devices.plugins.module_utils.transport import HttpTransport

    ids = trusted_ids(feishu_sandbox, 12)
    token = FeishuClient(HttpTransport(feishu_sandbox.url), app_id=feishu_sandbox.app_id,
                         app_secret=feishu_sandbox.app_secret).tokens.get()
    static = FeishuClient(HttpTransport(feishu_sandbox.url), tenant_access_token=token)
    feishu_sandbox.faults.add(action="expire_tokens", match={"method": "PUT"}, skip=1, times=1)
    result = feishu_device_record.run(fake_module(params(device_record_id=ids, device_status="untrusted")),
                                      static)
    assert result["failed"]
    outcomes = [o["outcome"] for o in result["outcomes"]]
    # Four workers start at once (the quota lets 10 go): which PUT came first is up to the threads.
    assert "changed" in outcomes and "failed" in outcomes and "not_attempted" in outcomes
    assert set(outcomes) <= {"changed", "failed", "not_attempted"}
    not_attempted = [o for o in result["outcomes"] if o["outcome"] == "not_attempted"]
    assert all(feishu_sandbox.records[o["device_record_id"]]["device_status"] == 1 for o in not_attempted)


def test_absent_with_a_name_that_matches_nothing_is_not_an_error(fake_module, feishu_sandbox, feishu_client):
    result = feishu_device_record.run(fake_module(params(device_name=["GONE"], state="absent")), feishu_client)
    assert not result["failed"] and not result["changed"]
    assert result["outcomes"] == [{"identifier": "GONE", "device_record_id": None, "outcome": "unchanged"}]


def test_present_with_a_name_that_matches_nothing_fails_before_writing(fake_module, feishu_sandbox, feishu_client):
    rid = trusted_ids(feishu_sandbox, 1)[0]
    name = feishu_sandbox.records[rid]["device_name"]
    with pytest.raises(LookupFailure) as caught:
        feishu_device_record.run(fake_module(params(device_name=[name, "GONE"], device_status="untrusted")),
                                 feishu_client)
    assert caught.value.problems == [{"field": "device_name", "value": "GONE", "reason": "missing",
                                      "candidates": []}]
    assert puts(feishu_sandbox) == []


def test_an_empty_identity_list_is_an_input_error(fake_module, feishu_client):
    with pytest.raises(InputError):
        feishu_device_record.run(fake_module(params(serial_number=[], device_status="trusted")), feishu_client)


def test_ownership_only_keeps_the_status(fake_module, feishu_sandbox, feishu_client):
    rid = trusted_ids(feishu_sandbox, 1)[0]
    before = dict(feishu_sandbox.records[rid])
    wanted = "personal" if before.get("device_ownership", 0) != 1 else "company"
    module = fake_module(params(device_record_id=[rid], device_ownership=wanted), diff=True)
    result = feishu_device_record.run(module, feishu_client)
    (put,) = puts(feishu_sandbox)
    assert put["body"]["device_status"] == 1
    assert list(result["diff"][0]["after"]) == ["device_ownership"]


def test_absent_with_fields_to_set_is_refused_before_any_request(fake_module, feishu_sandbox, feishu_client):
    rid = trusted_ids(feishu_sandbox, 1)[0]
    with pytest.raises(InputError) as caught:
        feishu_device_record.run(fake_module(params(device_record_id=[rid], state="absent", device_status="untrusted")),
                                 feishu_client)
    assert "state=absent" in str(caught.value) and "device_status" in str(caught.value)
    assert feishu_sandbox.wire.entries() == []


def test_a_delete_whose_answer_was_lost_is_settled_by_reads_not_sent_again(fake_module, feishu_sandbox, feishu_client):
    rid = trusted_ids(feishu_sandbox, 1)[0]
    feishu_sandbox.faults.add(action="reset_after_apply", match={"method": "DELETE"}, times=1)
    result = feishu_device_record.run(fake_module(params(device_record_id=[rid], state="absent")), feishu_client)
    assert result["outcomes"][0]["outcome"] == "changed" and rid not in feishu_sandbox.records
    assert len(feishu_sandbox.wire.entries(method="DELETE")) == 1


def test_a_delete_that_never_shows_ends_uncertain(fake_module, feishu_sandbox, feishu_client, monkeypatch):
    from ansible_collections.fleetguard.devices.plugins.module_utils import settle

    monkeypatch.setattr(settle, "SETTLE_MIN", 0.3)
    monkeypatch.setattr(settle, "SETTLE_TIMEOUTS", 0)
    monkeypatch.setattr(settle, "SETTLE_POLL", 0.1)
    rid = trusted_ids(feishu_sandbox, 1)[0]
    feishu_sandbox.faults.add(action="reset", match={"method": "DELETE"}, times=3)
    result = feishu_device_record.run(fake_module(params(device_record_id=[rid], state="absent")), feishu_client)
    assert result["failed"] and result["outcomes"][0]["outcome"] == "uncertain"
    assert len(feishu_sandbox.wire.entries(method="DELETE")) == 3 and rid in feishu_sandbox.records
