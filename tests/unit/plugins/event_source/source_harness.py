"""What the tests of the change sources share: a source's main loaded as ansible-rulebook loads it, a run of it
on an asyncio queue, and rounds of its blocking half (the code main() runs in a thread)."""

import asyncio
import importlib.util
import os
import time

from ansible_collections.fleetguard.devices.plugins.module_utils.feishu_changes import FeishuDeviceRecordChanges
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_delta import GraphDeviceChanges

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
SOURCES = os.path.join(REPO, "extensions", "eda", "plugins", "event_source")
DELTA = "/devices/delta"


def source_main(name):
    """The plugin's main, loaded by path as ansible-rulebook loads it."""
    # By file location, as ansible-rulebook loads a source: runpy.run_path would take a path under ansible-test's
    # collection loader for a package and look for a __main__ in it.
    spec = importlib.util.spec_from_file_location("fleetguard_source_" + name, os.path.join(SOURCES, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


async def collect(main, args, count, timeout, between=None):
    """Run the source until `count` events arrived (or `timeout`); `between(events)` runs after each quiet 0.2 s."""
    queue = asyncio.Queue()
    task = asyncio.ensure_future(main(queue, args))
    events = []
    try:
        deadline = time.monotonic() + timeout
        while len(events) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or task.done():
                break
            try:
                events.append(await asyncio.wait_for(queue.get(), min(remaining, 0.2)))
            except asyncio.TimeoutError:
                if between is not None:
                    await asyncio.get_running_loop().run_in_executor(None, between, events)
                continue
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        except Exception as error:  # the source ended by itself: hand its error to the test
            events.append(error)
    return events


def graph_poller(args, **more):
    poller = GraphDeviceChanges(dict(args, **more))
    poller.start()
    return poller


def feishu_poller(args, **more):
    poller = FeishuDeviceRecordChanges(dict(args, **more))
    poller.start()
    return poller


def round_of(poller):
    """One committed round: the `fleetguard` part of each event."""
    events = poller.poll()
    poller.commit()
    return [event["fleetguard"] for event in events]


def delta_calls(graph_sandbox, since=0):
    return [entry for entry in graph_sandbox.wire.entries(since=since) if entry["path"].endswith(DELTA)]
