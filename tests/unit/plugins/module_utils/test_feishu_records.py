"""Finding Feishu device records by identifier: scans and lookups, exact matches, candidates."""

from ansible_collections.fleetguard.devices.plugins.module_utils.feishu_records import FeishuDeviceRecords

LIST = r"/device_records$"


class TestResolve:
    def test_a_few_ids_are_fetched_one_by_one(self, feishu_sandbox, feishu_client):
        ids = sorted(feishu_sandbox.records)[:3]
        matches, hints = FeishuDeviceRecords(feishu_client).resolve("device_record_id", ids + ["7999999999999999999"])
        assert [len(matches[i]) for i in ids] == [1, 1, 1]
        assert matches["7999999999999999999"] == []
        assert feishu_sandbox.wire.entries(path_regex=LIST) == []

    def test_many_ids_in_a_small_directory_cost_one_scan(self, feishu_sandbox, feishu_client):
        ids = sorted(feishu_sandbox.records)[:40]
        matches, hints = FeishuDeviceRecords(feishu_client).resolve("device_record_id", ids)
        assert all(len(matches[i]) == 1 for i in ids)
        api_calls = [e for e in feishu_sandbox.wire.entries() if "tenant_access_token" not in e["path"]]
        assert len(api_calls) == 1

    def test_names_are_matched_exactly_and_duplicates_show_as_candidates(self, feishu_sandbox, feishu_client):
        ids = sorted(feishu_sandbox.records)[:4]
        names = [feishu_sandbox.records[i]["device_name"] for i in ids]
        twin = feishu_sandbox.add_record(device_name=names[0], device_system=2, serial_number="TWIN")
        matches, hints = FeishuDeviceRecords(feishu_client).resolve("device_name", names + [names[1][:-1]])
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
        matches, hints = FeishuDeviceRecords(feishu_client).resolve("device_name", names)
        assert [[r["device_record_id"] for r in matches[n]] for n in names] == [[i] for i in ids]
        lists = feishu_sandbox.wire.entries(path_regex=LIST)
        scans = [e for e in lists if "device_name" not in e["query"]]
        lookups = [e for e in lists if "device_name" in e["query"]]
        assert len(scans) == 2 and len(lookups) == 4

    def test_one_name_is_one_lookup(self, feishu_sandbox, feishu_client):
        record_id = sorted(feishu_sandbox.records)[5]
        name = feishu_sandbox.records[record_id]["device_name"]
        matches, hints = FeishuDeviceRecords(feishu_client).resolve("device_name", [name])
        assert [r["device_record_id"] for r in matches[name]] == [record_id]
        (call,) = feishu_sandbox.wire.entries(path_regex=LIST)
        assert call["query"]["device_name"] == name


class TestConvergeWithLostAnswers:
    """PUTs whose answers are lost to the client's timeout or a dropped connection. A PUT carries the version it
    was read at, so a late original and a resend never both apply; what the task reports must say what it did."""

    TIMEOUT = 1.0
    PUT = {"method": "PUT"}

    def records(self, sandbox):
        from ansible_collections.fleetguard.devices.plugins.module_utils.feishu_client import FeishuClient
        from ansible_collections.fleetguard.devices.plugins.module_utils.transport import HttpTransport

        transport = HttpTransport(sandbox.url, timeout=self.TIMEOUT, max_retries=3, backoff_base=0.001,
                                  backoff_cap=0.01)
        return FeishuDeviceRecords(FeishuClient(transport, app_id=sandbox.app_id, app_secret=sandbox.app_secret))

    @staticmethod
    def trusted(sandbox):
        record_id = [r for r in sorted(sandbox.records) if sandbox.records[r].get("device_status", 0) != 2][0]
        return record_id, dict(sandbox.records[record_id])

    @staticmethod
    def short_settle(monkeypatch, seconds):
        from ansible_collections.fleetguard.devices.plugins.module_utils import settle

        monkeypatch.setattr(settle, "SETTLE_MIN", seconds)
        monkeypatch.setattr(settle, "SETTLE_TIMEOUTS", 0)
        monkeypatch.setattr(settle, "SETTLE_POLL", 0.1)

    @staticmethod
    def applied(sandbox):
        return [e for e in sandbox.wire.entries(method="PUT") if e["status"] == 200 and e["api_code"] == 0]

    def test_a_late_put_and_its_resend_refused_as_stale_is_reported_changed(self, feishu_sandbox):
        record_id, record = self.trusted(feishu_sandbox)
        # The first PUT lands 1.6 s after it was sent (the client gave up at 1 s); the one sent again after the
        # re-read is handled after it, at the version the first one replaced.
        feishu_sandbox.faults.add(action="latency", seconds=1.6, match=self.PUT, times=1)
        feishu_sandbox.faults.add(action="latency", seconds=0.9, match=self.PUT, times=1)
        changes = self.records(feishu_sandbox).converge([record], {"device_status": 2})
        assert changes[record_id].changed is True and changes[record_id].error is None
        assert len(self.applied(feishu_sandbox)) == 1 and feishu_sandbox.records[record_id]["version"] == "1"

    def test_a_stale_answer_on_the_last_attempt_is_checked_for_this_tasks_own_late_put(self, feishu_sandbox):
        record_id, record = self.trusted(feishu_sandbox)
        # 1st PUT: lands late. 2nd: dropped before it applies. 3rd, the last: handled after the 1st landed, stale.
        feishu_sandbox.faults.add(action="latency", seconds=1.6, match=self.PUT, times=1)
        feishu_sandbox.faults.add(action="reset", match=self.PUT, times=1)
        feishu_sandbox.faults.add(action="latency", seconds=0.9, match=self.PUT, times=1)
        changes = self.records(feishu_sandbox).converge([record], {"device_status": 2})
        assert len(feishu_sandbox.wire.entries(method="PUT")) == 3
        assert changes[record_id].error is None, changes[record_id].error
        assert changes[record_id].changed is True and feishu_sandbox.records[record_id]["device_status"] == 2

    def test_giving_up_while_the_last_answer_is_lost_settles_first_and_sees_the_late_put(
            self, feishu_sandbox, monkeypatch):
        self.short_settle(monkeypatch, 5.0)
        record_id, record = self.trusted(feishu_sandbox)
        # The first PUT lands 1.6 s late; the two sent after it are dropped before they apply.
        feishu_sandbox.faults.add(action="latency", seconds=1.6, match=self.PUT, times=1)
        feishu_sandbox.faults.add(action="reset", match=self.PUT, times=2)
        changes = self.records(feishu_sandbox).converge([record], {"device_status": 2})
        assert changes[record_id].error is None, changes[record_id].error
        assert changes[record_id].changed is True
        assert len(self.applied(feishu_sandbox)) == 1 and feishu_sandbox.records[record_id]["version"] == "1"

    def test_an_early_put_still_in_flight_is_settled_though_later_ones_were_answered_by_faults(
            self, feishu_sandbox, monkeypatch):
        self.short_settle(monkeypatch, 5.0)
        record_id, record = self.trusted(feishu_sandbox)
        # The first PUT lands 1.6 s late; the two sent after it are answered at once by a page that is not
        # Feishu's, before it lands. The last answer came, but the first PUT can still land at its version.
        feishu_sandbox.faults.add(action="latency", seconds=1.6, match=self.PUT, times=1)
        feishu_sandbox.faults.add(action="answer", body="<html><body>Maintenance</body></html>",
                                  content_type="text/html", match=self.PUT, times=2)
        changes = self.records(feishu_sandbox).converge([record], {"device_status": 2})
        assert changes[record_id].error is None, changes[record_id].error
        assert changes[record_id].changed is True
        assert len(self.applied(feishu_sandbox)) == 1 and feishu_sandbox.records[record_id]["version"] == "1"

    def test_a_put_whose_answers_were_all_lost_and_that_never_shows_is_uncertain(self, feishu_sandbox, monkeypatch):
        from ansible_collections.fleetguard.devices.plugins.module_utils.errors import UncertainWrite

        self.short_settle(monkeypatch, 0.5)
        record_id, record = self.trusted(feishu_sandbox)
        feishu_sandbox.faults.add(action="reset", match=self.PUT, times=3)
        changes = self.records(feishu_sandbox).converge([record], {"device_status": 2})
        assert isinstance(changes[record_id].error, UncertainWrite), changes[record_id].error
        # Settled by reads: a few GETs after the last PUT, no fourth PUT.
        assert len(feishu_sandbox.wire.entries(method="PUT")) == 3
        assert feishu_sandbox.records[record_id]["version"] == "0"

    def test_a_lost_put_settles_as_soon_as_another_writer_moves_the_version_on(self, feishu_sandbox, monkeypatch):
        self.short_settle(monkeypatch, 30.0)
        record_id, record = self.trusted(feishu_sandbox)
        feishu_sandbox.faults.add(action="reset", match=self.PUT, times=3)
        # Another writer edits the record once the last PUT was dropped: no PUT at the old version can land now.
        original = feishu_sandbox.process

        def process(request):
            answer = original(request)
            if len(feishu_sandbox.wire.entries(method="PUT")) == 3 and feishu_sandbox.records[record_id]["version"] == "0":
                feishu_sandbox.concurrent_edit(record_id, device_ownership=1)
            return answer

        monkeypatch.setattr(feishu_sandbox, "process", process)
        changes = self.records(feishu_sandbox).converge([record], {"device_status": 2})
        error = changes[record_id].error
        assert error is not None and "kept changing" in error.message, error
        assert len(feishu_sandbox.wire.entries(method="GET")) < 10, "the settle waited for a PUT that could not land"

    def test_a_put_answered_by_a_page_that_is_not_feishus_is_re_read_and_sent_again(self, feishu_sandbox):
        record_id, record = self.trusted(feishu_sandbox)
        feishu_sandbox.faults.add(action="answer", body="<html><body>Maintenance</body></html>",
                                  content_type="text/html", match=self.PUT, times=1)
        changes = self.records(feishu_sandbox).converge([record], {"device_status": 2})
        assert changes[record_id].error is None, changes[record_id].error
        assert changes[record_id].changed is True and len(self.applied(feishu_sandbox)) == 1
