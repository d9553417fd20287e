# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""The asyncio half of the change sources (extensions/eda/plugins/event_source): the poll loop.

The clients block (requests), so every call of the poller (module_utils: change_poller.ChangePoller) runs in the
loop's thread executor and ansible-rulebook's loop keeps serving the rulebook meanwhile. A round's events go on the
queue before the poller commits the round (at least once). A fault of a round is logged and the round is read again
at the next poll: only bad arguments and refused credentials end the source, at start-up, and a refused token that
cannot be renewed (a ready access_token or tenant_access_token), at the first round it is refused.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import asyncio
import importlib
import logging

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import FleetguardError, TransientError

logger = logging.getLogger("fleetguard.devices.change_source")


async def _in_thread(function):
    return await asyncio.get_running_loop().run_in_executor(None, function)


async def _start(poller):
    """Connect and load the state; a transient fault (the token endpoint down) is waited out, anything else ends
    the source before any delta or list call."""
    while True:
        try:
            await _in_thread(poller.start)
            return
        except TransientError as error:
            logger.warning("%s: could not start (%s); trying again in %d s", poller.SOURCE, error, poller.interval)
        await asyncio.sleep(poller.interval)


async def _round(queue, poller):
    """One poll: the events on the queue, then the commit. Returns how many events were put."""
    try:
        events = await _in_thread(poller.poll)
    except FleetguardError as error:
        if poller.fatal(error):
            logger.error("%s: %s; the source ends", poller.SOURCE, error)
            raise
        logger.warning("%s: the round failed and will be read again in %d s: %s", poller.SOURCE, poller.interval, error)
        return 0
    except Exception as error:  # a fault must never end the source: report it and poll again
        logger.error("%s: the round failed (%s: %s) and will be read again in %d s", poller.SOURCE,
                     type(error).__name__, error, poller.interval)
        return 0
    for event in events:
        await queue.put(event)
    try:
        await _in_thread(poller.commit)
    except OSError as error:
        logger.error("%s: the state file could not be written (%s); events of this round come again after a restart",
                     poller.SOURCE, error)
    info = ", ".join("%s=%s" % item for item in sorted(poller.round_info.items()) if item[1] not in (None, ""))
    logger.info("%s: %d event(s) (%s)", poller.SOURCE, len(events), info)
    if poller.round_info.get("error"):
        # A Feishu pass with a failed page: what it read counts, but an operator must see that it keeps failing.
        logger.warning("%s: the round was incomplete and will be read again in %d s: %s", poller.SOURCE,
                       poller.interval, poller.round_info["error"])
    return len(events)


async def run_source(queue, args, poller_name):
    """Poll every `interval` seconds, forever; refuse bad arguments and credentials at once. `poller_name` is
    `module.Class` of the source's poller in module_utils."""
    module_name, class_name = poller_name.rsplit(".", 1)
    module = importlib.import_module("ansible_collections.fleetguard.devices.plugins.module_utils." + module_name)
    poller = getattr(module, class_name)(args)
    await _start(poller)
    logger.info("%s: started, polling every %d s%s", poller.SOURCE, poller.interval,
                "" if poller.state_file else " (no state_file: changes made while stopped are not seen)")
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        await _round(queue, poller)
        await asyncio.sleep(max(0.0, poller.interval - (loop.time() - started)))
