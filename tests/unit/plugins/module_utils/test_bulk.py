"""bulk.run_each: one piece of work per item on a few threads, results in input order, a fatal error stops new work.

Items are made to finish out of order, or to wait for each other, with threading events and barriers: no test
waits for time to pass. Every wait has a generous timeout so that a broken run_each fails the test instead of
hanging it.
"""

import threading

import pytest

from ansible_collections.fleetguard.devices.plugins.module_utils import bulk
from ansible_collections.fleetguard.devices.plugins.module_utils.errors import (
    ApiError,
    AuthenticationError,
    FleetguardError,
    InputError,
    NotFoundError,
    TransientError,
    UncertainWrite,
)

# Long enough never to expire in a healthy run; only a broken run_each ever waits this long.
WAIT = 10


class Bug(Exception):
    """An exception that is not a FleetguardError: a bug in the work, which run_each must not swallow."""


def wait_for(event, what):
    if not event.wait(WAIT):
        raise AssertionError("gave up waiting for %s" % what)


def summary(results):
    """(item, value, error, attempted) of each result, in the order run_each returned them."""
    return [(r.item, r.value, r.error, r.attempted) for r in results]


# --- order ---------------------------------------------------------------------------------------------


def test_results_come_back_in_input_order_though_items_finish_in_reverse():
    items = [0, 1, 2, 3]
    done = dict((item, threading.Event()) for item in items)
    finished = []
    lock = threading.Lock()

    def work(item):
        # Each item waits for the next one to finish: the last item finishes first, the first one last.
        if item + 1 in done:
            wait_for(done[item + 1], "item %d to finish" % (item + 1))
        with lock:
            finished.append(item)
        done[item].set()
        return "value-%d" % item

    results = bulk.run_each(items, work, workers=4)

    assert finished == [3, 2, 1, 0]
    assert summary(results) == [(i, "value-%d" % i, None, True) for i in items]


def test_several_workers_run_items_at_the_same_time():
    workers = 3
    barrier = threading.Barrier(workers, timeout=WAIT)
    threads = set()
    lock = threading.Lock()

    def work(item):
        with lock:
            threads.add(threading.current_thread())
        # Passes only when `workers` items are in work at once (else BrokenBarrierError, a bug, propagates).
        barrier.wait()
        return item * 10

    results = bulk.run_each([0, 1, 2], work, workers=workers)

    assert [r.value for r in results] == [0, 10, 20]
    assert len(threads) == workers
    assert threading.current_thread() not in threads


def test_items_beyond_the_worker_count_are_all_done_in_input_order():
    items = list(range(9))
    release = threading.Event()
    started = []
    lock = threading.Lock()

    def work(item):
        with lock:
            started.append(item)
            if len(started) == len(items):
                release.set()
        if item == 0:
            # The first item holds its worker until every other item has started on the two others.
            wait_for(release, "every item to start")
        return -item

    results = bulk.run_each(iter(items), work, workers=3)

    assert sorted(started) == items
    assert [r.item for r in results] == items
    assert [r.value for r in results] == [-i for i in items]


def test_no_items_give_no_results_and_no_work():
    calls = []
    assert bulk.run_each([], calls.append, workers=4) == []
    assert calls == []


# --- errors -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("error", [
    ApiError("rejected", status=400),
    NotFoundError("gone", status=404),
    TransientError("timed out", maybe_applied=True),
    UncertainWrite("answer lost"),
    InputError("bad value"),
], ids=lambda error: type(error).__name__)
def test_a_fleetguard_error_on_one_item_leaves_the_others_done(error):
    items = ["a", "b", "c", "d"]
    failing_started = threading.Event()
    others_done = threading.Event()
    done = []
    lock = threading.Lock()

    def work(item):
        if item == "b":
            failing_started.set()
            # Fail only once every other item has finished: they must not depend on this one.
            wait_for(others_done, "the other items")
            raise error
        wait_for(failing_started, "item b to start")
        with lock:
            done.append(item)
            if len(done) == 3:
                others_done.set()
        return item.upper()

    results = bulk.run_each(items, work, workers=4)

    assert summary(results) == [
        ("a", "A", None, True),
        ("b", None, error, True),
        ("c", "C", None, True),
        ("d", "D", None, True),
    ]
    assert sorted(done) == ["a", "c", "d"]


def test_an_error_on_one_item_does_not_stop_the_next_items_inline():
    def work(item):
        if item == 1:
            raise ApiError("rejected")
        return item

    results = bulk.run_each([0, 1, 2, 3], work, workers=1)

    assert [(r.value, r.attempted) for r in results] == [(0, True), (None, True), (2, True), (3, True)]
    assert isinstance(results[1].error, ApiError)


def test_a_fatal_error_stops_new_items_but_lets_running_ones_finish(monkeypatch):
    # Two workers: "running" holds one of them; "fatal" fails on the other, which then takes the later items.
    # "running" is released only once every later item has come back not attempted, so they were passed over
    # while it was still running, and it still finishes with its value.
    items = ["running", "fatal", "later-1", "later-2", "later-3"]
    later = items[2:]
    passed_over = []
    all_passed_over = threading.Event()
    running_started = threading.Event()
    lock = threading.Lock()

    class RecordingItemResult(bulk.ItemResult):
        __slots__ = ()

        def __init__(self, item, value=None, error=None, attempted=True):
            super(RecordingItemResult, self).__init__(item, value=value, error=error, attempted=attempted)
            if not attempted:
                with lock:
                    passed_over.append(item)
                    if len(passed_over) == len(later):
                        all_passed_over.set()

    monkeypatch.setattr(bulk, "ItemResult", RecordingItemResult)
    called = []
    fatal_error = AuthenticationError("token expired and could not be refreshed", status=401)

    def work(item):
        with lock:
            called.append(item)
        if item == "running":
            running_started.set()
            wait_for(all_passed_over, "the later items to be passed over")
            return "finished"
        if item == "fatal":
            wait_for(running_started, "the running item to start")
            raise fatal_error
        return "should not have started"

    results = bulk.run_each(items, work, workers=2)

    assert sorted(called) == ["fatal", "running"]
    assert sorted(passed_over) == sorted(later)
    assert summary(results) == [
        ("running", "finished", None, True),
        ("fatal", None, fatal_error, True),
        ("later-1", None, None, False),
        ("later-2", None, None, False),
        ("later-3", None, None, False),
    ]


def test_a_fatal_error_inline_stops_every_later_item():
    called = []

    def work(item):
        called.append(item)
        if item == 2:
            raise AuthenticationError("credentials gone")
        return item

    results = bulk.run_each([1, 2, 3, 4], work, workers=1)

    assert called == [1, 2]
    assert [(r.item, r.value, r.attempted) for r in results] == [(1, 1, True), (2, None, True), (3, None, False),
                                                                 (4, None, False)]
    assert isinstance(results[1].error, AuthenticationError)


def test_the_fatal_errors_are_the_callers_choice():
    def work(item):
        if item == "a":
            raise NotFoundError("gone")
        if item == "b":
            raise AuthenticationError("credentials gone")
        return item

    # With nothing fatal, even an AuthenticationError leaves the other items to run.
    results = bulk.run_each(["a", "b", "c"], work, workers=1, fatal=())
    assert [r.attempted for r in results] == [True, True, True]
    assert results[2].value == "c"

    # A NotFoundError declared fatal stops everything after it.
    results = bulk.run_each(["a", "b", "c"], work, workers=1, fatal=(NotFoundError,))
    assert [r.attempted for r in results] == [True, False, False]
    assert isinstance(results[0].error, NotFoundError)


@pytest.mark.parametrize("workers", [1, 3], ids=["inline", "threads"])
def test_an_exception_that_is_not_a_fleetguard_error_propagates(workers):
    bug = Bug("a bug in the work")

    def work(item):
        if item == 1:
            raise bug
        return item

    with pytest.raises(Bug) as caught:
        bulk.run_each([0, 1, 2], work, workers=workers)
    assert caught.value is bug
    assert not isinstance(caught.value, FleetguardError)


def test_a_bug_inline_stops_at_the_failing_item():
    called = []

    def work(item):
        called.append(item)
        if item == 1:
            raise KeyError("missing key")
        return item

    with pytest.raises(KeyError):
        bulk.run_each([0, 1, 2], work, workers=1)
    assert called == [0, 1]


# --- inline -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("items, workers", [
    ([1, 2, 3], 1),
    ([1, 2, 3], 0),
    ([1], 4),
], ids=["one-worker", "zero-workers", "single-item"])
def test_one_worker_or_a_single_item_runs_inline_on_the_calling_thread(items, workers, monkeypatch):
    def no_pool(*args, **kwargs):
        raise AssertionError("run_each started a thread pool for an inline run")

    monkeypatch.setattr(bulk, "ThreadPoolExecutor", no_pool)
    threads = []

    def work(item):
        threads.append(threading.current_thread())
        return item + 100

    results = bulk.run_each(items, work, workers=workers)

    assert [(r.item, r.value, r.attempted) for r in results] == [(i, i + 100, True) for i in items]
    assert threads == [threading.current_thread()] * len(items)


def test_several_items_with_several_workers_do_not_run_on_the_calling_thread():
    threads = []
    lock = threading.Lock()

    def work(item):
        with lock:
            threads.append(threading.current_thread())
        return item

    bulk.run_each([1, 2], work, workers=2)

    assert len(threads) == 2
    assert threading.current_thread() not in threads
