"""fleetguard.devices.feishu_device_record_info against the Feishu sandbox."""

import json
import os
import shutil
import tempfile

TASK = "read records"


def info_task(**args):
    return "- name: %s\n  fleetguard.devices.feishu_device_record_info: %s\n  register: out\n" % (TASK, json.dumps(args))


def test_filters_accept_names_and_follow_every_page(feishu, playbook):
    with feishu.lock:
        expected = sorted(rid for rid, rec in feishu.records.items()
                          if rec.get("device_status", 0) == 2 and rec.get("device_ownership", 0) == 2)
    run = playbook(info_task(filters={"device_status": "untrusted", "device_ownership": "company"}))
    assert run.returncode == 0, run.stdout
    result = run.task(TASK)["result"]
    assert result["changed"] is False
    assert sorted(r["device_record_id"] for r in result["device_records"]) == expected
    (call,) = feishu.wire.entries(method="GET", path_regex=r"/device_records$")
    assert call["query"]["device_status"] == "2" and call["query"]["device_ownership"] == "2"


def test_no_filter_reads_all_pages_and_limit_stops_early(feishu, playbook):
    feishu_total = len(feishu.records)
    run = playbook(info_task())
    assert len(run.task(TASK)["result"]["device_records"]) == feishu_total
    feishu.wire.clear()
    run = playbook(info_task(limit=7))
    assert len(run.task(TASK)["result"]["device_records"]) == 7
    (call,) = feishu.wire.entries(method="GET", path_regex=r"/device_records$")
    assert call["query"]["page_size"] == "7"


def test_by_id_reports_missing_ids(feishu, playbook):
    rid = sorted(feishu.records)[0]
    run = playbook(info_task(device_record_id=[rid, "7999999999999999999"]))
    result = run.task(TASK)["result"]
    assert [r["device_record_id"] for r in result["device_records"]] == [rid]
    assert result["missing"] == ["7999999999999999999"]


def test_an_unknown_filter_fails_before_any_request(feishu, playbook):
    run = playbook(info_task(filters={"device_colour": "blue"}))
    assert run.returncode != 0
    assert "unknown filter 'device_colour'" in run.task(TASK)["result"]["msg"]
    assert feishu.wire.entries(path_regex=r"/device_records") == []


def test_check_mode_reads_normally(feishu, playbook):
    run = playbook(info_task(limit=3), check=True)
    assert len(run.task(TASK)["result"]["device_records"]) == 3


def test_a_hostile_quota_state_directory_is_refused_with_a_warning_and_the_task_still_runs(feishu, playbook):
    # Short: ansible-core 2.21 puts a unix socket under TMPDIR, whose path may not exceed 107 bytes.
    tmp = tempfile.mkdtemp(prefix="fg-quota-")
    try:
        elsewhere = os.path.join(tmp, "elsewhere")
        os.mkdir(elsewhere, 0o700)
        for name in ("fleetguard-devices-quota", "fleetguard-devices-quota-%d" % os.geteuid()):
            os.symlink(elsewhere, os.path.join(tmp, name))
        run = playbook(info_task(limit=3), extra_env={"TMPDIR": tmp, "TMP": tmp, "TEMP": tmp})
        assert run.returncode == 0, run.stdout
        assert len(run.task(TASK)["result"]["device_records"]) == 3
        assert "refused the quota state" in run.stdout and "is a symbolic link" in run.stdout, run.stdout
        assert os.listdir(elsewhere) == []
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
