"""run() of feishu_device_record_info (filter validation itself: test_feishu_filters.py)."""

import pytest

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import InputError
from ansible_collections.fleetguard.devices.plugins.modules import feishu_device_record_info as info


def test_run_refuses_a_bad_filter_before_any_request(fake_module, feishu_sandbox, feishu_client):
    with pytest.raises(InputError):
        info.run(fake_module(dict(device_record_id=None, filters={"device_status": "suspicious"}, limit=None)),
                 feishu_client)
    assert len(feishu_sandbox.wire) == 0


def test_run_sends_enum_filters_as_integers(fake_module, feishu_sandbox, feishu_client):
    expected = sorted(rid for rid, r in feishu_sandbox.records.items() if r.get("device_status", 0) == 2)
    result = info.run(fake_module(dict(device_record_id=None, filters={"device_status": "untrusted"}, limit=None)),
                      feishu_client)
    assert sorted(r["device_record_id"] for r in result["device_records"]) == expected
    (call,) = feishu_sandbox.wire.entries(path_regex=r"/device_records$")
    assert call["query"]["device_status"] == "2"


def test_run_reads_ids_and_names_the_missing(fake_module, feishu_sandbox, feishu_client):
    rid = sorted(feishu_sandbox.records)[0]
    result = info.run(fake_module(dict(device_record_id=[rid, "7999999999999999999"], filters=None, limit=None)),
                      feishu_client)
    assert [r["device_record_id"] for r in result["device_records"]] == [rid]
    assert result["missing"] == ["7999999999999999999"] and result["changed"] is False


def test_run_with_a_limit_reads_one_small_page(fake_module, feishu_sandbox, feishu_client):
    result = info.run(fake_module(dict(device_record_id=None, filters={}, limit=5)), feishu_client)
    assert len(result["device_records"]) == 5
    assert len(feishu_sandbox.wire.entries(path_regex=r"/device_records$")) == 1
