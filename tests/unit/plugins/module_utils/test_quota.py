"""Window quotas: N starts in any W seconds, spent at once, paused on the server's word, shared across processes."""

import json
import multiprocessing
import os
import tempfile
import time

import pytest

from ansible_collections.fleetguard.devices.plugins.module_utils import quota as quota_module
from ansible_collections.fleetguard.devices.plugins.module_utils.quota import WindowQuota, scope_key


class FakeTime:
    """A clock that moves only when something sleeps."""

    def __init__(self, now=1000.0):
        self.now = now
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def private_tempdir(tmp_path, monkeypatch):
    """Quota state files go under the temp dir: give each test its own."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def spend(quota, cost=1, latency=0.0, fake=None):
    """One request: acquire, the answer after `latency`, release."""
    ticket = quota.acquire(cost)
    if latency:
        fake.now += latency
    quota.release(ticket)


def test_a_window_is_spent_at_once_then_starts_wait_for_the_oldest_to_leave():
    fake = FakeTime()
    quota = WindowQuota(10, 1.0, clock=fake.clock, sleep=fake.sleep)
    for dummy in range(10):
        spend(quota)
    assert fake.sleeps == []
    spend(quota)
    assert fake.sleeps == [pytest.approx(1.0)]


def test_a_request_holds_its_place_until_a_window_after_its_answer():
    # The server counts arrivals: one that arrived late must not share a window with the next ones.
    fake = FakeTime()
    quota = WindowQuota(2, 1.0, clock=fake.clock, sleep=fake.sleep)
    spend(quota, latency=0.3, fake=fake)
    spend(quota)
    spend(quota)
    assert sum(fake.sleeps) == pytest.approx(1.0)


def test_requests_in_flight_hold_the_window_until_answered():
    fake = FakeTime()
    quota = WindowQuota(1, 1.0, clock=fake.clock, sleep=fake.sleep)
    ticket = quota.acquire()
    waiter = []

    def answer_after_a_while(seconds):
        fake.sleeps.append(seconds)
        fake.now += seconds
        if fake.now >= 1000.1 and not waiter:
            waiter.append(True)
            quota.release(ticket)

    quota._sleep = answer_after_a_while
    quota.acquire()
    assert fake.now == pytest.approx(1001.1, abs=0.05)


def test_a_large_window_is_not_turned_into_a_fixed_spacing():
    # 3,000 writes per 150 s: 1,000 writes need no wait at all.
    fake = FakeTime()
    quota = WindowQuota(3000, 150.0, clock=fake.clock, sleep=fake.sleep)
    for dummy in range(50):
        spend(quota, 20)
    assert fake.sleeps == []


def test_a_start_costing_several_waits_until_enough_have_left():
    fake = FakeTime()
    quota = WindowQuota(25, 10.0, clock=fake.clock, sleep=fake.sleep)
    spend(quota, 20)
    fake.now += 5
    spend(quota, 5)
    assert fake.sleeps == []
    spend(quota, 20)
    # The first 20 leave at 10 s: 5 s from now; then 5 + 20 fit.
    assert fake.sleeps == [pytest.approx(5.0)]


def test_pause_holds_every_start_back_for_the_servers_wait():
    fake = FakeTime()
    quota = WindowQuota(50, 1.0, clock=fake.clock, sleep=fake.sleep)
    spend(quota)
    quota.pause(2.0)
    spend(quota)
    assert fake.sleeps == [pytest.approx(2.0)]


def test_the_servers_count_holds_the_room_others_took_once_and_for_the_hold_only():
    fake = FakeTime()
    quota = WindowQuota(10, 5.0, clock=fake.clock, sleep=fake.sleep)
    spend(quota)
    # The server counted 8 of 10: 7 of them came from elsewhere. Told twice, they count once.
    quota.observe_usage(0.8, hold=2.0)
    quota.observe_usage(0.8, hold=2.0)
    spend(quota)
    spend(quota)
    assert fake.sleeps == []
    # The window is full: the 7 leave after the 2-s hold, this controller's own 3 only after 5 s.
    spend(quota)
    assert fake.sleeps == [pytest.approx(2.0)]


def test_a_count_at_or_below_this_controllers_own_adds_nothing_and_a_hold_never_outlasts_the_window():
    fake = FakeTime()
    quota = WindowQuota(10, 1.0, clock=fake.clock, sleep=fake.sleep)
    for dummy in range(9):
        spend(quota)
    quota.observe_usage(0.9, hold=30.0)
    spend(quota)
    assert fake.sleeps == []
    quota.observe_usage(1.5, hold=30.0)  # over the limit (Graph sends up to 1.8): held for the window, 1 s
    spend(quota)
    assert fake.sleeps == [pytest.approx(1.0)]


def test_the_state_file_holds_timestamps_only(private_tempdir):
    fake = FakeTime()
    key = scope_key("feishu", "open.feishu.cn", "cli_app", "update")
    quota = WindowQuota(10, 1.0, key=key, clock=fake.clock, sleep=fake.sleep)
    ticket = quota.acquire()
    quota.release(ticket)
    quota.pause(0.5)
    path = os.path.join(str(private_tempdir), quota_module.STATE_DIR_NAME, key + ".json")
    assert json.load(open(path)) == {"requests": [[ticket, 1, 1000.0, 1000.0]], "paused_until": 1000.5}
    assert "cli_app" not in open(path).read() and "cli_app" not in path


def test_two_quotas_with_one_key_share_a_window_and_stale_starts_expire(private_tempdir):
    fake = FakeTime()
    key = scope_key("graph", "graph.microsoft.com", "tenant", "app", "writes")
    first = WindowQuota(4, 10.0, key=key, clock=fake.clock, sleep=fake.sleep)
    second = WindowQuota(4, 10.0, key=key, clock=fake.clock, sleep=fake.sleep)
    spend(first, 3)
    spend(second, 1)
    assert fake.sleeps == []
    spend(second, 1)
    assert fake.sleeps == [pytest.approx(10.0)]
    fake.now += 60
    spend(first, 4)
    assert len(fake.sleeps) == 1


def test_a_corrupt_state_file_counts_as_empty(private_tempdir):
    key = scope_key("corrupt")
    quota = WindowQuota(1, 1.0, key=key)
    with open(quota_module.state_path(key), "w") as handle:
        handle.write('{"requests": [[1, "x"')
    spend(quota)


def _burst(key, tempdir, count, results):
    tempfile.tempdir = tempdir
    quota = WindowQuota(10, 2.0, key=key)
    for dummy in range(count):
        ticket = quota.acquire()
        results.put(time.time())
        quota.release(ticket)


def test_two_processes_share_one_window(private_tempdir):
    # Each process alone would start its 8 at once; together only 10 may start in any 2 s.
    key = scope_key("two processes", os.getpid())
    results = multiprocessing.get_context("fork").Queue()
    workers = [multiprocessing.get_context("fork").Process(target=_burst, args=(key, str(private_tempdir), 8, results))
               for dummy in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    starts = sorted(results.get(timeout=5) for dummy in range(16))
    in_first_window = [start for start in starts if start < starts[0] + 2.0]
    assert len(in_first_window) == 10
    assert starts[10] - starts[0] >= 2.0
