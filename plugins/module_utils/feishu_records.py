# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bringing one Feishu device record to its desired state, safely.

Updates carry the `version` that was read; Feishu answers 1785008 when it is stale (or the record is
gone), so the record is re-read, the change recomputed and the write retried, a bounded number of
times. A write whose answer was lost is re-read before anything else: if it landed, it is not sent again.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.fleetguard.devices.plugins.module_utils.bulk import Change
from ansible_collections.fleetguard.devices.plugins.module_utils.comparison import (
    apply_changes,
    changed_fields,
)
from ansible_collections.fleetguard.devices.plugins.module_utils.errors import (
    ApiError,
    NotFoundError,
    TransientError,
)
from ansible_collections.fleetguard.devices.plugins.module_utils.feishu_client import (
    DEVICE_OWNERSHIP,
    DEVICE_STATUS,
)

MANAGED_ENUMS = dict(device_status=DEVICE_STATUS, device_ownership=DEVICE_OWNERSHIP)
MANAGED_FIELDS = ("device_status", "device_ownership")
MAX_WRITE_ATTEMPTS = 3


def desired_from_names(device_status=None, device_ownership=None):
    """The wire form (ints) of the fields the user set."""
    desired = {}
    if device_status is not None:
        desired["device_status"] = DEVICE_STATUS[device_status]
    if device_ownership is not None:
        desired["device_ownership"] = DEVICE_OWNERSHIP[device_ownership]
    return desired


def readable_view(record, fields):
    """The given managed fields of a record with enum names instead of ints: what --diff shows."""
    view = {}
    for field in fields:
        names = dict((number, name) for name, number in MANAGED_ENUMS[field].items())
        value = (record or {}).get(field)
        view[field] = names.get(value, value)
    return view


def record_label(record):
    name = record.get("device_name") or record.get("serial_number")
    return "device record %s%s" % (record.get("device_record_id"), " (%s)" % name if name else "")


def converge_record(client, current, desired, check_mode=False, max_attempts=MAX_WRITE_ATTEMPTS):
    """Make `current` match `desired` (ints). Check mode follows the same path and stops before the PUT."""
    record_id = current["device_record_id"]
    first_seen = current
    versions = [current.get("version")]
    last_transient = None
    for dummy in range(max_attempts):
        delta = changed_fields(current, desired)
        if not delta:
            # Nothing to write (perhaps another writer got there first): not a change of ours.
            return Change(first_seen, current, changed=False)
        predicted = apply_changes(current, delta)
        if check_mode:
            return Change(first_seen, predicted, changed=True)
        try:
            client.update_record(record_id, current["version"], predicted["device_ownership"],
                                 predicted["device_status"])
        except NotFoundError:
            # Stale version, or the record vanished: the fresh read tells which.
            last_transient = None
            current = _reread(client, record_id)
            versions.append(current.get("version"))
            continue
        except TransientError as exc:
            if not exc.maybe_applied:
                raise
            last_transient = exc
            current = _reread(client, record_id)
            versions.append(current.get("version"))
            if not changed_fields(current, desired):
                # Our write landed; its answer was lost.
                return Change(first_seen, current, changed=True)
            continue
        after = client.get_record(record_id)
        return Change(first_seen, after if after is not None else predicted, changed=True)
    if last_transient is not None:
        last_transient.message = "gave up after %d attempts, each re-read showed it had not landed: %s" % (
            max_attempts, last_transient.message)
        raise last_transient
    raise ApiError(
        "gave up after %d attempts: the record kept changing under us (version read first %s, last %s)"
        % (max_attempts, versions[0], versions[-1]), method="PUT", path="device_records/%s" % record_id)


def _reread(client, record_id):
    record = client.get_record(record_id)
    if record is None:
        raise NotFoundError("the record was deleted while this task was updating it",
                            method="GET", path="device_records/%s" % record_id)
    return record


def remove_record(client, current, check_mode=False):
    """Delete one record. Already gone is not a change; a lost answer is settled by a re-read."""
    record_id = current["device_record_id"]
    if check_mode:
        return Change(current, {}, changed=True)
    try:
        deleted = client.delete_record(record_id)
    except TransientError as exc:
        if not exc.maybe_applied or client.get_record(record_id) is not None:
            raise
        deleted = True
    return Change(current, {}, changed=deleted)
