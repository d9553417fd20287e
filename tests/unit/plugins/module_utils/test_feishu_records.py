"""Finding Feishu device records by identifier: scans and lookups, exact matches, candidates."""

from ansible_collections.fleetguard.devices.plugins.module_utils.feishu_records import FeishuDeviceRecords

LIST = r"/device_records$"


class TestResolve:
    def test_a_few_ids_are_fetched_one_by_one(self, feishu_sandbox, feishu_client):
        ids = sorted(feishu_sandbox.records)[:3]
        matches = FeishuDeviceRecords(feishu_client).resolve("device_record_id", ids + ["7999999999999999999"])
        assert [len(matches[i]) for i in ids] == [1, 1, 1]
        assert matches["7999999999999999999"] == []
        assert feishu_sandbox.wire.entries(path_regex=LIST) == []

    def test_many_ids_in_a_small_directory_cost_one_scan(self, feishu_sandbox, feishu_client):
        ids = sorted(feishu_sandbox.records)[:40]
        matches = FeishuDeviceRecords(feishu_client).resolve("device_record_id", ids)
        assert all(len(matches[i]) == 1 for i in ids)
        api_calls = [e for e in feishu_sandbox.wire.entries() if "tenant_access_token" not in e["path"]]
        assert len(api_calls) == 1

    def test_names_are_matched_exactly_and_duplicates_show_as_candidates(self, feishu_sandbox, feishu_client):
        ids = sorted(feishu_sandbox.records)[:4]
        names = [feishu_sandbox.records[i]["device_name"] for i in ids]
        twin = feishu_sandbox.add_record(device_name=names[0], device_system=2, serial_number="TWIN")
        matches = FeishuDeviceRecords(feishu_client).resolve("device_name", names + [names[1][:-1]])
        assert sorted(r["device_record_id"] for r in matches[names[0]]) == sorted([ids[0], twin["device_record_id"]])
        assert [r["device_record_id"] for r in matches[names[1]]] == [ids[1]]
        assert matches[names[1][:-1]] == []
        # 5 names in a 61-record directory: one scan page instead of five lookups.
        assert len(feishu_sandbox.wire.entries(path_regex=LIST)) == 1

    def test_a_scan_that_outgrows_its_budget_falls_back_to_lookups(self, feishu_sandbox, feishu_client):
        feishu_sandbox.reset(records=450)
        feishu_sandbox.wire.clear()
        ids = sorted(feishu_sandbox.records)[:4]
        names = [feishu_sandbox.records[i]["device_name"] for i in ids]
        matches = FeishuDeviceRecords(feishu_client).resolve("device_name", names)
        assert [[r["device_record_id"] for r in matches[n]] for n in names] == [[i] for i in ids]
        lists = feishu_sandbox.wire.entries(path_regex=LIST)
        scans = [e for e in lists if "device_name" not in e["query"]]
        lookups = [e for e in lists if "device_name" in e["query"]]
        assert len(scans) == 2 and len(lookups) == 4

    def test_one_name_is_one_lookup(self, feishu_sandbox, feishu_client):
        record_id = sorted(feishu_sandbox.records)[5]
        name = feishu_sandbox.records[record_id]["device_name"]
        matches = FeishuDeviceRecords(feishu_client).resolve("device_name", [name])
        assert [r["device_record_id"] for r in matches[name]] == [record_id]
        (call,) = feishu_sandbox.wire.entries(path_regex=LIST)
        assert call["query"]["device_name"] == name
