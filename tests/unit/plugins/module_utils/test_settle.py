"""settle.settle and give_up: a write whose answer was lost is read until it shows, or until its deadline.

The reads are real: a directory reading the emulators on 127.0.0.1. The clock is the test's own (settle takes
`now` and `sleep`), so the waits are counted, never spent; a "late write" lands when the clock reaches its time.
"""

import pytest

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import TransientError, UncertainWrite
from ansible_collections.fleetguard.devices.plugins.module_utils.feishu_records import FeishuDeviceRecords
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_devices import GraphDevices
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_odata import DeviceAddress
from ansible_collections.fleetguard.devices.plugins.module_utils.settle import give_up, settle, settle_seconds

UNTRUSTED = 2


class FakeClock:
    """now() and sleep(): time moves only when settle sleeps; `at` holds (time, action) pairs run once reached."""

    def __init__(self):
        self.time = 0.0
        self.sleeps = []
        self.at = []

    def now(self):
        return self.time

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.time += seconds
        for when, action in list(self.at):
            if self.time >= when:
                self.at.remove((when, action))
                action()


def trusted_records(sandbox, count):
    return [r for r in sorted(sandbox.records) if sandbox.records[r].get("device_status", 0) != UNTRUSTED][:count]


def untrusted(record):
    return record is not None and record["device_status"] == UNTRUSTED


def record_reads(sandbox, record_id=None):
    suffix = "/" + record_id if record_id else ""
    return [e for e in sandbox.wire.entries(method="GET") if "device_records/" in e["path"] and e["path"].endswith(suffix)]


def test_a_write_that_already_shows_is_read_once_and_never_waited_for(feishu_sandbox, feishu_client):
    (record_id,) = trusted_records(feishu_sandbox, 1)
    feishu_sandbox.concurrent_edit(record_id, device_status=UNTRUSTED)
    clock = FakeClock()
    fresh, never = settle(FeishuDeviceRecords(feishu_client).read, [record_id], untrusted, 5, clock.now, clock.sleep)
    assert untrusted(fresh[record_id]) and never == []
    assert clock.sleeps == [] and len(record_reads(feishu_sandbox)) == 1


def test_a_late_write_is_read_every_second_until_it_shows(feishu_sandbox, feishu_client):
    (record_id,) = trusted_records(feishu_sandbox, 1)
    clock = FakeClock()
    clock.at.append((3.0, lambda: feishu_sandbox.concurrent_edit(record_id, device_status=UNTRUSTED)))
    fresh, never = settle(FeishuDeviceRecords(feishu_client).read, [record_id], untrusted, 5, clock.now, clock.sleep)
    assert untrusted(fresh[record_id]) and never == []
    # Read at 0, 1, 2 and 3 s: the write showed in the fourth read.
    assert clock.sleeps == [1.0, 1.0, 1.0] and len(record_reads(feishu_sandbox)) == 4


def test_a_write_that_never_shows_is_given_up_at_three_timeouts(feishu_sandbox, feishu_client):
    (record_id,) = trusted_records(feishu_sandbox, 1)
    clock = FakeClock()
    fresh, never = settle(FeishuDeviceRecords(feishu_client).read, [record_id], untrusted, 20, clock.now, clock.sleep)
    assert never == [record_id] and not untrusted(fresh[record_id])
    assert settle_seconds(20) == 60.0 and sum(clock.sleeps) == pytest.approx(60.0)
    assert len(record_reads(feishu_sandbox)) == 61


def test_a_short_timeout_still_waits_thirty_seconds(feishu_sandbox, feishu_client):
    (record_id,) = trusted_records(feishu_sandbox, 1)
    clock = FakeClock()
    dummy, never = settle(FeishuDeviceRecords(feishu_client).read, [record_id], untrusted, 1, clock.now, clock.sleep)
    assert never == [record_id] and sum(clock.sleeps) == pytest.approx(30.0)


def test_only_the_objects_still_waiting_are_read_again(feishu_sandbox, feishu_client):
    shown_at_once, shown_late = trusted_records(feishu_sandbox, 2)
    feishu_sandbox.concurrent_edit(shown_at_once, device_status=UNTRUSTED)
    clock = FakeClock()
    clock.at.append((2.0, lambda: feishu_sandbox.concurrent_edit(shown_late, device_status=UNTRUSTED)))
    fresh, never = settle(FeishuDeviceRecords(feishu_client).read, [shown_at_once, shown_late], untrusted, 5,
                          clock.now, clock.sleep)
    assert never == [] and untrusted(fresh[shown_at_once]) and untrusted(fresh[shown_late])
    assert len(record_reads(feishu_sandbox, shown_at_once)) == 1
    assert len(record_reads(feishu_sandbox, shown_late)) == 3


def test_a_deleted_object_reads_as_none_and_settles_a_delete(feishu_sandbox, feishu_client):
    (record_id,) = trusted_records(feishu_sandbox, 1)
    clock = FakeClock()
    clock.at.append((1.0, lambda: feishu_sandbox.records.pop(record_id)))
    fresh, never = settle(FeishuDeviceRecords(feishu_client).read, [record_id], lambda record: record is None, 5,
                          clock.now, clock.sleep)
    assert fresh == {record_id: None} and never == []


def test_nothing_to_settle_reads_nothing(feishu_sandbox, feishu_client):
    clock = FakeClock()
    assert settle(FeishuDeviceRecords(feishu_client).read, [], untrusted, 5, clock.now, clock.sleep) == ({}, [])
    assert record_reads(feishu_sandbox) == [] and clock.sleeps == []


def test_graph_devices_settle_through_batched_reads(graph_sandbox, graph_client):
    object_ids = sorted(graph_sandbox.devices)[:2]
    for object_id in object_ids:
        graph_sandbox.devices[object_id]["accountEnabled"] = True
    clock = FakeClock()

    def disable():
        for object_id in object_ids:
            graph_sandbox.devices[object_id]["accountEnabled"] = False

    clock.at.append((2.0, disable))
    devices = GraphDevices(graph_client, DeviceAddress())
    fresh, never = settle(devices.read, object_ids, lambda device: device["accountEnabled"] is False, 5,
                          clock.now, clock.sleep)
    assert never == [] and all(fresh[object_id]["accountEnabled"] is False for object_id in object_ids)
    batches = [e for e in graph_sandbox.wire.entries() if e["path"].endswith("/$batch") and e.get("batch_item") is None]
    assert len(batches) == 3, "one $batch call of both reads per poll"


def test_giving_up_on_a_lost_write_that_never_showed_is_uncertain():
    lost = TransientError("connection failed", maybe_applied=True, method="PATCH", path="/devices/x",
                          client_request_id="c-1")
    error = give_up(lost, True, 3)
    assert isinstance(error, UncertainWrite)
    assert "one of 3 attempts was lost" in error.message and "connection failed" in error.message
    assert (error.method, error.path, error.client_request_id) == ("PATCH", "/devices/x", "c-1")


def test_giving_up_after_writes_each_re_read_as_not_landed_keeps_the_error():
    failed = TransientError("Service Unavailable", maybe_applied=True, method="PATCH", path="/devices/x", status=503)
    error = give_up(failed, False, 3)
    assert error is failed and not isinstance(error, UncertainWrite)
    assert error.message == "gave up after 3 attempts, each re-read showed the write had not landed: Service Unavailable"
