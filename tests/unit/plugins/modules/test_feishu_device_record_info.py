"""run() of feishu_device_record_info, and its filter validation."""

import pytest

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import InputError
from ansible_collections.fleetguard.devices.plugins.modules import feishu_device_record_info as info


@pytest.mark.parametrize("filters, expected", [
    ({"device_status": "untrusted"}, {"device_status": 2}),
    ({"device_status": 1}, {"device_status": 1}),
    ({"device_status": "1"}, {"device_status": 1}),
    ({"os": "macOS"}, {"os": 2}),
    ({"device_terminal_type": "desktop", "is_managed": False}, {"device_terminal_type": 2, "is_managed": "false"}),
    ({"device_name": "A", "serial_number": None}, {"device_name": "A"}),
])
def test_filters_are_translated(filters, expected):
    assert info.list_filters(filters) == expected


@pytest.mark.parametrize("filters", [
    {"device_status": "suspicious"},
    {"device_status": 7},
    {"device_status": True},
    {"is_managed": "yes"},
    {"colour": "red"},
])
def test_bad_filters_are_refused(filters):
    with pytest.raises(InputError):
        info.list_filters(filters)


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
