# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""The blocking half of a change source (extensions/eda): start-up checks, one round of reading per `poll()`, and
`commit()` once the round's events are on the rulebook's queue. The poll loop (plugin_utils/change_source.py) runs
each call in a thread; msgraph_delta.py and feishu_changes.py subclass `ChangePoller` for their API.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.fleetguard.devices.plugins.module_utils.change_arguments import source_arguments
from ansible_collections.fleetguard.devices.plugins.module_utils.change_state import (
    check_state_file,
    load_state,
    save_state,
)
from ansible_collections.fleetguard.devices.plugins.module_utils.errors import AuthenticationError, InputError


class ChangePoller:
    """Start-up, rounds and commits of one change source.

    Subclasses set SOURCE, DIRECTORY, TABLE (connection options plus source_options()), and implement `connect()`
    (the client, credentials checked), `scope()` (what the state belongs to), `new_tracker(snapshot)`,
    `cursor_problem(cursor)` (what is wrong with a cursor read from the state file, or None) and `read_round()`
    -> (events, cursor, snapshot).
    """

    SOURCE = None
    DIRECTORY = None
    TABLE = {}

    def __init__(self, args):
        self.params = source_arguments(args, self.TABLE, self.SOURCE)
        self.interval = self.params["interval"]
        self.state_file = self.params["state_file"]
        self.initial = self.params["initial"]
        check_state_file(self.state_file)
        self.client = None
        self.tracker = None
        self.state_scope = None
        self.cursor = None  # the delta link (Graph); True once a complete pass was taken (Feishu)
        self.baseline = True  # the next round sets the baseline (no state yet)
        self.round_info = {}
        self._pending = None

    def start(self):
        """Build the client and check the credentials (one token call), then load the state: raises InputError or
        AuthenticationError before any delta or list call."""
        self.client = self.connect()
        self.state_scope = self.scope()
        state = load_state(self.state_file, self.SOURCE, self.state_scope)
        if state:
            problem = self.cursor_problem(state.get("cursor"))
            if problem:
                raise InputError("state_file %s is damaged (%s): move it away" % (self.state_file, problem))
        self.tracker = self.new_tracker(state["snapshot"] if state else None)
        if state:
            self.cursor = state.get("cursor")
            self.baseline = False

    def poll(self):
        """One round: the events to put on the queue (the state advances only with `commit`)."""
        events, cursor, snapshot = self.read_round()
        self._pending = (cursor, snapshot)
        return events

    def commit(self):
        """The round's events are on the queue: advance the snapshot, the cursor and the state file."""
        if self._pending is None:
            return
        cursor, snapshot = self._pending
        self._pending = None
        self.tracker.commit(snapshot)
        self.cursor = cursor
        self.baseline = False
        if self.state_file:
            save_state(self.state_file, self.SOURCE, self.state_scope, self.tracker.snapshot, cursor=cursor)

    def baseline_events(self, events):
        """The first round without a state: nothing (initial: skip) or every device as added (initial: emit)."""
        return events if self.initial == "emit" else []

    def fatal(self, error):
        """Whether a round's error ends the source: a refused token that cannot be renewed (a ready access_token or
        tenant_access_token) would be refused at every later round too."""
        return isinstance(error, AuthenticationError) and self.client is not None and not self.client.tokens.can_refresh
