# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""The state file of a change source (extensions/eda): its cursor (a delta link, or "a complete pass was taken") and
the snapshot of the tracked properties, so that a restarted source neither replays nor loses a change.

A state file belongs to one source and one scope (directory, endpoint, tenant or app, tracked properties). A file of
another scope is not used (the source starts over); a file of the other source, or one whose content is not what
the source writes, is refused at start-up: it is never overwritten.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import tempfile
import time

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import InputError

STATE_FORMAT = 1


def utc_now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def check_state_file(path):
    """Refuse, at start-up, a state_file whose folder does not exist or cannot be written. A symbolic link counts
    as the file it points to: the state is written there, and the link stays."""
    if not path:
        return
    target = os.path.realpath(path)
    folder = os.path.dirname(target)
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK | os.X_OK):
        raise InputError("state_file %s: the folder %s does not exist or is not writable" % (path, folder))
    if os.path.isdir(target):
        raise InputError("state_file %s is a folder, not a file" % path)


def load_state(path, source, scope):
    """The state `source` saved for this `scope`, or None when there is none or it was saved for another scope.

    Raises InputError, naming the file, for a file that is not a state file, holds the state of another source, or
    holds a snapshot of the wrong shape (a hand edit, another tool's file): taking it would fail every round."""
    if not path or not os.path.exists(path):
        return None
    try:
        with open(path) as handle:
            state = json.load(handle)
    except (OSError, ValueError) as exc:
        raise InputError("state_file %s cannot be read as a state file of %s (%s): move it away" % (
            path, source, type(exc).__name__))
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT or not isinstance(state.get("snapshot"), dict):
        raise InputError("state_file %s is not a state file of %s: move it away" % (path, source))
    owner = state.get("source")
    if owner != source:
        raise InputError("state_file %s is the state of %s, not of %s: give each source its own state_file" % (
            path, owner if isinstance(owner, str) else "another program", source))
    problem = snapshot_problem(state["snapshot"])
    if problem:
        raise InputError("state_file %s is damaged (%s): move it away" % (path, problem))
    if state.get("scope") != scope:
        return None
    return state


def snapshot_problem(snapshot):
    """What is wrong with a snapshot read from a file ({device id: {property: value}}), or None."""
    for object_id, device in snapshot.items():
        if not isinstance(device, dict):
            return "the snapshot of %s is a %s, not an object" % (object_id, type(device).__name__)
    return None


def save_state(path, source, scope, snapshot, **fields):
    """Write the state atomically (a private temporary file in the same folder, renamed over the old one), mode
    0600. It holds the source, the scope, the snapshot and `fields` (the cursor): never a credential. A symbolic
    link is written through: the file it points to is replaced, the link stays."""
    target = os.path.realpath(path)
    folder = os.path.dirname(target)
    state = dict(fields, format=STATE_FORMAT, source=source, scope=scope, snapshot=snapshot, saved_at=utc_now())
    handle, temporary = tempfile.mkstemp(prefix=".%s." % os.path.basename(target), dir=folder)
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, "w") as stream:
            json.dump(state, stream, sort_keys=True)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
