# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""The events of the change sources (extensions/eda) and the snapshot they are computed from.

A source keeps a snapshot of the tracked properties of every device it has seen. A round of observations (Graph
delta entries, which may carry only some properties; Feishu records, whole) is compared with it: `ChangeTracker`
returns the events of the round and the snapshot after it, and changes nothing until the caller commits it, once
the events are on the rulebook's queue (at least once: a round whose events were not delivered is read again).
The arguments are checked in change_arguments.py, the state file kept by change_state.py, and the rounds run by
change_poller.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

from ansible_collections.fleetguard.devices.plugins.module_utils.change_state import utc_now

CHANGES = ("added", "updated", "removed", "resync")


def change_event(directory, change, object_id, device, changed=(), previous=None, observed_at=None):
    """One event, in the shape rulebooks match on."""
    return {"fleetguard": {
        "directory": directory,
        "change": change,
        "id": object_id,
        "device": copy.deepcopy(device or {}),
        "changed": list(changed),
        "previous": copy.deepcopy(previous or {}),
        "observed_at": observed_at or utc_now(),
    }}


def resync_event(directory, now=None):
    return change_event(directory, "resync", None, {}, observed_at=now)


class ChangeTracker:
    """The snapshot of tracked properties per device id, and the events a round of observations means.

    `tracked`: the properties compared (None: every field an entry has); `identity`: properties every event's
    `device` carries (ids, names) that are not compared unless tracked; `ignored`: properties kept but never listed
    as changed (Feishu's `version`: it is how a change is found, not a change). `whole`: an entry is the complete
    device (Feishu); otherwise it may carry only some properties and is merged over the snapshot (Graph's delta).
    """

    def __init__(self, directory, tracked=None, identity=(), ignored=(), whole=False, snapshot=None):
        self.directory = directory
        self.tracked = list(tracked) if tracked is not None else None
        self.identity = [name for name in identity if self.tracked is None or name not in self.tracked]
        self.ignored = set(ignored)
        self.whole = whole
        self.snapshot = dict(snapshot or {})

    def _kept(self):
        return self.identity + (self.tracked or []) + sorted(self.ignored)

    def _known(self, entry, previous):
        """The device as it is now: the entry, or (partial entries) the entry merged over its snapshot."""
        if self.whole and self.tracked is None:
            return copy.deepcopy(entry)
        device = {} if self.whole else dict(previous or {})
        for name in self._kept():
            if name in entry:
                device[name] = copy.deepcopy(entry[name])
            else:
                device.setdefault(name, None)
        return device

    def _changed(self, device, previous):
        names = self.tracked
        if names is None:
            names = sorted(set(device) | set(previous))
        return [name for name in names
                if name != "id" and name not in self.ignored and device.get(name) != previous.get(name)]

    def _event(self, object_id, previous, device, now):
        """The event of a device seen in a round, compared with the snapshot before the round (None: none)."""
        if previous is None:
            return change_event(self.directory, "added", object_id, device, observed_at=now)
        changed = self._changed(device, previous)
        if not changed:
            return None
        before = dict((name, previous.get(name)) for name in changed)
        return change_event(self.directory, "updated", object_id, device, changed, before, now)

    @staticmethod
    def _gone(snapshot, removed, present):
        """The ids of `snapshot` a round says are gone, each once: reported `removed`, or (a round that listed the
        whole directory) not `present`."""
        gone = []
        for object_id in removed:
            if object_id in snapshot and object_id not in gone:
                gone.append(object_id)
        if present is not None:
            present = set(present)
            gone += sorted(object_id for object_id in snapshot if object_id not in present and object_id not in gone)
        return gone

    def observe(self, entries, removed=(), present=None, now=None):
        """(events, snapshot after): `entries` are devices seen (id under "id"), `removed` ids the round ends with
        gone (the reader drops from it a device that came back later in the round), and `present` (when the round
        listed the whole directory) every id that exists: a device of the snapshot not among them is gone.

        A device seen more than once in a round gives one event, compared with the snapshot before the round; a
        device seen and then removed gives only its `removed` event (none when it was new in the round). Nothing
        changes until `commit`."""
        now = now or utc_now()
        snapshot = dict(self.snapshot)
        order = []
        for entry in entries:
            object_id = entry["id"]
            if object_id not in order:
                order.append(object_id)
            snapshot[object_id] = self._known(entry, snapshot.get(object_id))
        if present is not None:
            present = set(present) | set(order)
        gone = self._gone(snapshot, removed, present)
        events = [self._event(object_id, self.snapshot.get(object_id), snapshot[object_id], now)
                  for object_id in order if object_id not in gone]
        events = [event for event in events if event is not None]
        for object_id in gone:
            device = snapshot.pop(object_id)
            if object_id in self.snapshot:
                events.append(change_event(self.directory, "removed", object_id, device, observed_at=now))
        return events, snapshot

    def commit(self, snapshot):
        self.snapshot = snapshot
