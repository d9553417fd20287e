"""Window quotas: N starts in any W seconds, spent at once, paused on the server's word, shared across processes."""

import json
import multiprocessing
import os
import tempfile
import time

import pytest

from ansible_collections.fleetguard.devices.plugins.module_utils import quota as quota_module
from ansible_collections.fleetguard.devices.plugins.module_utils.quota import WindowQuota, scope_key
from ansible_collections.fleetguard.devices.tests.unit.plugins.module_utils.fake_time import FakeTime


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
    path = quota_module.state_path(key)
    assert path.startswith(str(private_tempdir))
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


def test_a_corrupt_state_file_counts_as_empty(private_tempdir, warnings):
    key = scope_key("corrupt")
    quota = WindowQuota(1, 1.0, key=key)
    write_state(key, '{"requests": [[1, "x"')
    spend(quota)
    assert len(warnings) == 1 and "not JSON" in warnings[0]


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


# --- a hostile temp dir, a corrupt or future-dated state: never followed, never waited out -------------------------

class WaitedTooLong(Exception):
    pass


class PatientTime(FakeTime):
    """A FakeTime that gives up after `most` seconds of sleep in all: a quota that would wait without end fails
    the test instead of hanging it."""

    def __init__(self, most, now=1000.0):
        super().__init__(now)
        self.most = most

    def sleep(self, seconds):
        super().sleep(seconds)
        if sum(self.sleeps) > self.most:
            raise WaitedTooLong("asked to sleep %r s (%d sleeps, %.1f s in all)" % (seconds, len(self.sleeps), sum(self.sleeps)))


@pytest.fixture
def warnings(monkeypatch):
    """The warnings the quotas give the user (the module's result, or the controller's display)."""
    said = []
    monkeypatch.setattr(quota_module, "warn", said.append, raising=False)
    return said


def state_dir_names(tempdir):
    """Every name a state directory of this user is looked for under: a hostile user plants them all."""
    return [tempdir / "fleetguard-devices-quota", tempdir / ("fleetguard-devices-quota-%d" % os.geteuid())]


def victim_file(tempdir):
    """A file outside the temp dir that a symlink planted in it points at: it must never be written."""
    victim = tempdir.parent / ("victim-%s" % tempdir.name)
    victim.write_text("root's own file\n")
    return victim


def local_pacing_holds(quota, fake):
    """A refused state directory still leaves the quota holding within the process."""
    for dummy in range(quota.limit + 1):
        spend(quota)
    return fake.sleeps == [pytest.approx(quota.window)]


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a directory to another user")
def test_a_state_directory_another_user_owns_is_refused_and_its_symlinks_never_followed(private_tempdir, warnings):
    key = scope_key("hostile", "owner")
    victim = victim_file(private_tempdir)
    for planted in state_dir_names(private_tempdir):
        planted.mkdir(mode=0o755)
        (planted / (key + ".json")).symlink_to(victim)
        os.chown(str(planted), 65534, 65534)
    fake = FakeTime()
    quota = WindowQuota(2, 1.0, key=key, clock=fake.clock, sleep=fake.sleep)
    assert local_pacing_holds(quota, fake)
    assert victim.read_text() == "root's own file\n"
    assert len(warnings) == 1 and "owned by uid 65534" in warnings[0], warnings
    assert "not shared" in warnings[0]


def test_a_group_or_world_writable_state_directory_is_refused(private_tempdir, warnings):
    key = scope_key("hostile", "mode")
    for planted in state_dir_names(private_tempdir):
        planted.mkdir()
        os.chmod(str(planted), 0o1777)
    fake = FakeTime()
    quota = WindowQuota(2, 1.0, key=key, clock=fake.clock, sleep=fake.sleep)
    assert local_pacing_holds(quota, fake)
    assert [os.listdir(str(planted)) for planted in state_dir_names(private_tempdir)] == [[], []]
    assert len(warnings) == 1 and "group- or world-writable" in warnings[0], warnings


def test_a_symlink_in_place_of_the_state_directory_is_refused(private_tempdir, warnings):
    key = scope_key("hostile", "directory link")
    elsewhere = private_tempdir / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    for planted in state_dir_names(private_tempdir):
        planted.symlink_to(elsewhere)
    fake = FakeTime()
    quota = WindowQuota(2, 1.0, key=key, clock=fake.clock, sleep=fake.sleep)
    assert local_pacing_holds(quota, fake)
    assert os.listdir(str(elsewhere)) == []
    assert len(warnings) == 1 and "symbolic link" in warnings[0], warnings


def test_a_symlink_in_place_of_the_state_file_is_never_followed(private_tempdir, warnings):
    key = scope_key("hostile", "file link")
    victim = victim_file(private_tempdir)
    for planted in state_dir_names(private_tempdir):
        planted.mkdir(mode=0o700)
        (planted / (key + ".json")).symlink_to(victim)
    fake = FakeTime()
    quota = WindowQuota(2, 1.0, key=key, clock=fake.clock, sleep=fake.sleep)
    assert local_pacing_holds(quota, fake)
    assert victim.read_text() == "root's own file\n"
    assert len(warnings) == 1 and key + ".json" in warnings[0] and "symbolic link" in warnings[0], warnings


def test_the_state_directory_is_this_users_own_and_private(private_tempdir, warnings):
    key = scope_key("private")
    spend(WindowQuota(2, 1.0, key=key))
    (directory,) = [planted for planted in state_dir_names(private_tempdir) if planted.exists()]
    assert directory.name.endswith("-%d" % os.geteuid())
    assert os.lstat(str(directory)).st_mode & 0o777 == 0o700
    assert os.lstat(str(directory / (key + ".json"))).st_mode & 0o777 == 0o600
    assert warnings == []


def write_state(key, content):
    path = quota_module.state_path(key)
    if not os.path.isdir(os.path.dirname(path)):
        os.makedirs(os.path.dirname(path), mode=0o700)
    with open(path, "wb") as handle:
        handle.write(content if isinstance(content, bytes) else content.encode())
    return path


def test_a_pause_further_ahead_than_any_server_asks_is_discarded_not_waited_out(private_tempdir, warnings):
    key = scope_key("paused an hour")
    write_state(key, json.dumps({"requests": [], "paused_until": 1000.0 + 3600}))
    fake = PatientTime(most=5.0)
    spend(WindowQuota(10, 1.0, key=key, clock=fake.clock, sleep=fake.sleep), fake=fake)
    assert fake.sleeps == []
    assert len(warnings) == 1 and "paused_until" in warnings[0] and "discarded" in warnings[0], warnings


def test_a_pause_a_server_may_ask_for_is_honoured_from_the_file(private_tempdir, warnings):
    key = scope_key("paused a while")
    write_state(key, json.dumps({"requests": [], "paused_until": 1000.0 + 120}))
    fake = PatientTime(most=200.0)
    spend(WindowQuota(10, 1.0, key=key, clock=fake.clock, sleep=fake.sleep), fake=fake)
    assert fake.sleeps == [pytest.approx(120.0)] and warnings == []


@pytest.mark.parametrize("entry", [
    ["started an hour ahead", 10, 1000.0 + 3600, None],
    ["answered an hour ahead", 10, 999.0, 1000.0 + 3600],
], ids=lambda entry: entry[0].replace(" ", "-"))
def test_entries_dated_in_the_future_are_discarded_not_waited_out(private_tempdir, warnings, entry):
    key = scope_key("future", entry[0])
    write_state(key, json.dumps({"requests": [entry], "paused_until": 0.0}))
    fake = PatientTime(most=5.0)
    spend(WindowQuota(10, 1.0, key=key, clock=fake.clock, sleep=fake.sleep), fake=fake)
    assert fake.sleeps == []
    assert len(warnings) == 1 and "in the future" in warnings[0], warnings


def test_a_clock_stepped_back_never_makes_a_process_wait_more_than_a_window(warnings):
    fake = PatientTime(most=5.0, now=100000.0)
    quota = WindowQuota(1, 1.0, clock=fake.clock, sleep=fake.sleep)
    spend(quota)
    fake.now -= 3600
    spend(quota)
    assert sum(fake.sleeps) <= 1.0
    assert len(warnings) == 1 and "in the future" in warnings[0], warnings


@pytest.mark.parametrize("content", [
    '{"requests": [], "paused_until": Infinity}',
    '{"requests": [], "paused_until": NaN}',
    '{"requests": [], "paused_until": "soon"}',
    '{"requests": [], "paused_until": [1]}',
    '{"requests": [["t", Infinity, 999.0, 999.5]], "paused_until": 0}',
    '{"requests": [["t", 1e999, 999.0, 999.5]], "paused_until": 0}',
    '{"requests": [["t", 1, NaN, null]], "paused_until": 0}',
    '{"requests": [["t", 1, 999.0, -Infinity]], "paused_until": 0}',
    '{"requests": [["t", 1, "999", null]], "paused_until": 0}',
    '{"requests": [["t", true, 999.0, 999.5]], "paused_until": 0}',
    '{"requests": [["t", -5, 999.0, 999.5]], "paused_until": 0}',
    '{"requests": [["t", 1, 999.0]], "paused_until": 0}',
    '{"requests": {"t": [1, 999.0, null]}, "paused_until": 0}',
    '{"requests": [[[[[["t"]]]]]], "paused_until": {"a": {"b": []}}}',
    '[["t", 1, 999.0, null]]',
    '"paused"',
    '12',
    '{"requests": [["t", 1, 999.0',
    '[' * 200000,
    b'\xff\xfe{"requests": []}',
    '{"requests": [], "paused_until": 0}' + ' ' * (3 * 1024 * 1024),
], ids=lambda content: (content if isinstance(content, str) else repr(content))[:40])
def test_a_state_file_not_of_the_expected_shape_is_discarded_with_a_warning(private_tempdir, warnings, content):
    key = scope_key("corrupt", content[:60])
    path = write_state(key, content)
    fake = PatientTime(most=5.0)
    spend(WindowQuota(10, 1.0, key=key, clock=fake.clock, sleep=fake.sleep), fake=fake)
    assert fake.sleeps == []
    assert len(warnings) == 1 and path in warnings[0] and "discarded" in warnings[0], warnings
    assert len(warnings[0]) < 600
    with open(path) as handle:
        rewritten = json.load(handle)
    assert rewritten["paused_until"] == 0.0 and [entry[1:] for entry in rewritten["requests"]] == [[1, 1000.0, 1000.0]]


@pytest.mark.parametrize("seconds", [float("inf"), float("nan"), -5.0, 1e300])
def test_a_pause_the_caller_got_wrong_is_bounded_and_never_written_as_a_non_number(private_tempdir, warnings, seconds):
    key = scope_key("bad pause", repr(seconds))
    fake = PatientTime(most=quota_module.MAX_PAUSE)
    quota = WindowQuota(10, 1.0, key=key, clock=fake.clock, sleep=fake.sleep)
    quota.pause(seconds)
    quota.observe_usage(seconds)
    spend(quota)
    assert sum(fake.sleeps) <= quota_module.MAX_PAUSE
    with open(quota_module.state_path(key)) as handle:
        json.loads(handle.read(), parse_constant=pytest.fail)


@pytest.mark.parametrize("content", [
    '{"requests": [], "paused_until": 1%s}' % ("0" * 400),
    '{"requests": [], "paused_until": -1%s}' % ("0" * 400),
    '{"requests": [["t", 1, 1%s, null]], "paused_until": 0}' % ("0" * 400),
    '{"requests": [["t", 1, 999.0, 1%s]], "paused_until": 0}' % ("0" * 400),
], ids=["paused-until", "paused-until-negative", "started", "answered"])
def test_an_integer_too_large_for_a_time_is_discarded_with_a_warning_not_raised(private_tempdir, warnings, content):
    key = scope_key("huge integer", content)
    path = write_state(key, content)
    fake = PatientTime(most=5.0)
    spend(WindowQuota(10, 1.0, key=key, clock=fake.clock, sleep=fake.sleep), fake=fake)
    assert fake.sleeps == []
    assert len(warnings) == 1 and path in warnings[0] and "discarded" in warnings[0], warnings
    assert len(warnings[0]) < 600


@pytest.mark.parametrize("cost", [11, 1000000])
def test_an_entry_costing_more_than_the_whole_window_is_discarded_not_waited_for(private_tempdir, warnings, cost):
    # No healthy run writes it, and in flight it would hold every start back until it turned stale.
    key = scope_key("costs more than the limit", cost)
    write_state(key, json.dumps({"requests": [["a", cost, 1000.0, None]], "paused_until": 0}))
    fake = PatientTime(most=5.0)
    spend(WindowQuota(10, 1.0, key=key, clock=fake.clock, sleep=fake.sleep), fake=fake)
    assert fake.sleeps == []
    assert len(warnings) == 1 and "more than the limit of 10" in warnings[0], warnings


def test_an_entry_costing_the_whole_window_is_kept(private_tempdir, warnings):
    key = scope_key("costs the limit")
    write_state(key, json.dumps({"requests": [["a", 10, 1000.0, 1000.0]], "paused_until": 0}))
    fake = PatientTime(most=5.0)
    spend(WindowQuota(10, 1.0, key=key, clock=fake.clock, sleep=fake.sleep), fake=fake)
    assert fake.sleeps == [pytest.approx(1.0)] and warnings == []


def test_a_healthy_run_never_writes_an_entry_costing_more_than_the_limit(private_tempdir, warnings):
    # What one process writes, the next must not take for forged: a start costing more than the whole window
    # waits for an empty window and fills it; a server's count over the limit fills the window, no more.
    key = scope_key("healthy costs")
    fake = PatientTime(most=5.0)
    quota = WindowQuota(10, 1.0, key=key, clock=fake.clock, sleep=fake.sleep)
    spend(quota, 25)
    quota.observe_usage(1.8)
    with open(quota_module.state_path(key)) as handle:
        assert max(entry[1] for entry in json.load(handle)["requests"]) <= 10
    spend(WindowQuota(10, 1.0, key=key, clock=fake.clock, sleep=fake.sleep), fake=fake)
    assert warnings == []


def test_each_look_of_a_start_waits_at_most_one_window(private_tempdir, warnings):
    # A request of a process that died stays in flight until STALE_AFTER: the start waiting for it looks again
    # at least once a window, never sleeps the whole STALE_AFTER at once.
    fake = FakeTime()
    quota = WindowQuota(2, 1.0, clock=fake.clock, sleep=fake.sleep)
    quota.acquire(2)  # never released
    spend(quota)
    assert max(fake.sleeps) <= 1.0
    assert sum(fake.sleeps) == pytest.approx(quota_module.STALE_AFTER + 1.0, abs=0.05)
