# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""Feishu device records: the enums, finding records by identifier, and bringing them to a desired state.

Updates carry the `version` that was read; Feishu answers 1785008 when it is stale (or the record is
gone), so the record is re-read, the change recomputed and the write retried, a bounded number of
times. A write whose answer was lost is re-read before anything else: if it landed, it is not sent again.
API reference: https://open.feishu.cn/document/security_and_compliance-v1/security_and_compliance-v2/device_record/update
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.fleetguard.devices.plugins.module_utils.bulk import run_each
from ansible_collections.fleetguard.devices.plugins.module_utils.comparison import (
    apply_changes,
    changed_fields,
    managed_view,
)
from ansible_collections.fleetguard.devices.plugins.module_utils.errors import ApiError, FleetguardError, NotFoundError
from ansible_collections.fleetguard.devices.plugins.module_utils.feishu_client import (
    MAX_PAGE_SIZE,
    RATE_LIMITS,
    check_device_record_id,
)
from ansible_collections.fleetguard.devices.plugins.module_utils.outcomes import Change, changes_from
from ansible_collections.fleetguard.devices.plugins.module_utils.settle import give_up, settle

# Enum names <-> the integers on the wire.
DEVICE_STATUS = {"unknown": 0, "trusted": 1, "untrusted": 2}
DEVICE_OWNERSHIP = {"unknown": 0, "personal": 1, "company": 2}
DEVICE_SYSTEM = {"unknown": 0, "windows": 1, "macos": 2, "linux": 3, "android": 4, "ios": 5, "openharmony": 6}
DEVICE_TERMINAL_TYPE = {"unknown": 0, "mobile": 1, "desktop": 2}
# Record fields that hold one of those enums.
RECORD_ENUMS = dict(device_status=DEVICE_STATUS, device_ownership=DEVICE_OWNERSHIP,
                    device_terminal_type=DEVICE_TERMINAL_TYPE, device_system=DEVICE_SYSTEM)
# The fields the module manages.
MANAGED_ENUMS = dict(device_status=DEVICE_STATUS, device_ownership=DEVICE_OWNERSHIP)
MAX_WRITE_ATTEMPTS = 3


def desired_state(device_status=None, device_ownership=None):
    """The wire form (ints) of the fields the user set."""
    desired = {}
    if device_status is not None:
        desired["device_status"] = DEVICE_STATUS[device_status]
    if device_ownership is not None:
        desired["device_ownership"] = DEVICE_OWNERSHIP[device_ownership]
    return desired


def enum_names(record):
    """The record with enum fields by name (device_status 2 -> untrusted); unknown numbers stay as they are."""
    named = dict(record)
    for field, enum in RECORD_ENUMS.items():
        if field in named:
            names = dict((number, name) for name, number in enum.items())
            named[field] = names.get(named[field], named[field])
    return named


class FeishuDeviceRecords:
    """The device records of one Feishu/Lark tenant, through a FeishuClient."""

    ID_KEY = "device_record_id"
    NOUN = "device record"
    # What a diff shows of a deleted record.
    ABSENT_VIEW = dict((field, None) for field in MANAGED_ENUMS)

    def __init__(self, client, workers=4):
        self.client = client
        self.workers = workers

    @staticmethod
    def label(record):
        name = record.get("device_name") or record.get("serial_number")
        return "device record %s%s" % (record.get("device_record_id"), " (%s)" % name if name else "")

    @staticmethod
    def view(record, desired):
        """The fields of `desired` as the record has them, enums by name: what --diff shows."""
        return enum_names(managed_view(record, desired))

    # --- finding records ------------------------------------------------------------------------

    def resolve(self, field, values):
        """Map each value of `field` (device_record_id, serial_number or device_name) to the records
        whose field equals it exactly: ({value: [record, ...]}, hints). The list endpoint matches exactly: it has
        no near matches to suggest, so hints is always {}.

        See _matches for how the records are found.
        """
        return self._matches(field, values), {}

    def _matches(self, field, values):
        """{value: [record, ...]}.

        Reading the whole directory page by page is far cheaper than one lookup per value when the
        directory is small compared to the number of values, and unknowable in advance. So a scan
        runs with a budget of half the pages that per-value lookups would cost; if the directory
        ends within it, values are matched locally; otherwise lookups finish the job (at worst
        1.5 times the lookups' cost, usually a small fraction).
        """
        values = list(dict.fromkeys(values))
        if field == "device_record_id":
            for value in values:
                check_device_record_id(value)
            # A GET is allowed five times as often as a list page.
            budget = len(values) * RATE_LIMITS["list"] // RATE_LIMITS["get"] // 2
        else:
            budget = len(values) // 2
        matches = dict((value, []) for value in values)
        remaining = values
        if budget >= 1:
            scanned, complete = self._scan(budget)
            for record in scanned:
                if record.get(field) in matches:
                    matches[record.get(field)].append(record)
            if complete:
                return matches
            if field == "device_record_id":
                # Ids are unique: whatever the partial scan found is settled.
                remaining = [value for value in values if not matches[value]]
            else:
                matches = dict((value, []) for value in values)
        for result in run_each(remaining, lambda value: self._lookup(field, value), workers=self.workers):
            if result.error is not None:
                raise result.error
            matches[result.item] = result.value
        return matches

    def read(self, record_ids):
        """Fresh reads by id, one after the other: {id: record, or None when it does not exist}."""
        return dict((record_id, self.client.get_record(record_id)) for record_id in record_ids)

    def iter_matching(self, filters=None, limit=None):
        """Every record that matches the list endpoint's `filters` (feishu_filters.list_filters), page by page;
        at most `limit`, in pages no larger than needed."""
        count = 0
        for record in self.client.iter_records(filters, page_size=min(limit, MAX_PAGE_SIZE) if limit else MAX_PAGE_SIZE):
            yield record
            count += 1
            if limit and count >= limit:
                return

    def _scan(self, max_pages):
        """Read up to max_pages list pages: (records, whether the directory ended within them)."""
        records = []
        params = dict(page_size=MAX_PAGE_SIZE)
        for dummy in range(max_pages):
            page, token = self.client.list_page(params)
            records.extend(page)
            if not token:
                return records, True
            params["page_token"] = token
        return records, False

    def _lookup(self, field, value):
        if field == "device_record_id":
            record = self.client.get_record(value)
            return [record] if record is not None else []
        # One page is enough: more than one match is already ambiguous, and the page names the candidates.
        records, dummy = self.client.list_page({field: value, "page_size": 20})
        return records

    # --- writing records ------------------------------------------------------------------------

    def converge(self, records, desired, check_mode=False):
        """Bring every record to `desired` (ints), a few at a time. Returns {record id: Change}."""
        results = run_each(records, lambda record: self._converge_one(record, desired, check_mode),
                           workers=self.workers)
        return changes_from(results, self.ID_KEY)

    def remove(self, records, check_mode=False):
        """Delete every record, a few at a time. Returns {record id: Change}."""
        results = run_each(records, lambda record: self._remove_one(record, check_mode), workers=self.workers)
        return changes_from(results, self.ID_KEY)

    def _converge_one(self, current, desired, check_mode):
        """Check mode follows the same path as a real run and stops before the PUT.

        A PUT carries the version it was read at, so a PUT whose answer was lost can land late only while the record
        is still at that version: a resend at the same version and a late original never both apply. A read that
        shows the desired state at a newer version after such a PUT is this task's write (or another writer's
        matching one): changed. Before giving up, a PUT that got no answer and carries the version the record is
        still at (any attempt's, not only the last one's) is settled first (settle.py): it may yet land."""
        return _RecordUpdate(self, current, desired).run(check_mode)

    def settle(self, record_ids, shows):
        """settle.settle on this directory's reads and the client's clock."""
        now, sleep = self.client.clock
        return settle(self.read, record_ids, shows, self.client.timeout, now=now, sleep=sleep)

    def reread(self, record_id):
        record = self.client.get_record(record_id)
        if record is None:
            raise NotFoundError("the record was deleted while this task was updating it",
                                method="GET", path="device_records/%s" % record_id)
        return record

    def _remove_one(self, current, check_mode):
        """Already gone is not a change. A DELETE carries no version, so one whose answer was lost is settled
        by re-reads before it is sent again (settle.py)."""
        record_id = current["device_record_id"]
        if check_mode:
            return Change(current, {}, changed=True)
        for dummy in range(MAX_WRITE_ATTEMPTS):
            try:
                return Change(current, {}, changed=self.client.delete_record(record_id))
            except ApiError as exc:
                if not exc.maybe_applied:
                    raise
                last_error = exc
            if last_error.status is None:
                # No answer at all: the DELETE may still be on its way.
                fresh, never_showed = self.settle([record_id], lambda record: record is None)
            else:
                fresh, never_showed = self.read([record_id]), []
            if fresh[record_id] is None:
                return Change(current, {}, changed=True)
        raise give_up(last_error, bool(never_showed), MAX_WRITE_ATTEMPTS)


class _RecordUpdate:
    """The PUTs of one record until it shows the desired state (see FeishuDeviceRecords._converge_one)."""

    def __init__(self, records, current, desired):
        self.records = records
        self.client = records.client
        self.record_id = current["device_record_id"]
        self.first_seen = self.current = current
        self.desired = desired
        self.versions = [current.get("version")]
        self.lost = None  # the last PUT whose answer was lost: it may have landed, or may still land
        self.last_error = None
        self.unanswered = {}  # version carried -> the error of a PUT that got no answer at all: it may still land

    def run(self, check_mode):
        for attempt in range(MAX_WRITE_ATTEMPTS + 1):
            delta = changed_fields(self.current, self.desired)
            if not delta:
                # Nothing (left) to write: our own PUT whose answer was lost landed, or another writer got there.
                return Change(self.first_seen, self.current, changed=self.lost is not None)
            if attempt == MAX_WRITE_ATTEMPTS:
                break
            predicted = apply_changes(self.current, delta)
            if check_mode:
                return Change(self.first_seen, predicted, changed=True)
            if self._put(predicted):
                return Change(self.first_seen, self._read_back(predicted), changed=True)
            self.current = self.records.reread(self.record_id)
            self.versions.append(self.current.get("version"))
        return self._give_up()

    def _put(self, predicted):
        """PUT at the version that was read: True when acknowledged, False when it must be re-read."""
        version = self.current["version"]
        try:
            self.client.update_record(self.record_id, version, predicted["device_ownership"], predicted["device_status"])
        except NotFoundError as exc:
            # Stale version, or the record vanished: the fresh read tells which.
            self.last_error = exc
            return False
        except ApiError as exc:
            if not exc.maybe_applied:
                raise
            self.lost = self.last_error = exc
            if exc.status is None:
                self.unanswered[version] = exc
            return False
        return True

    def _read_back(self, predicted):
        try:
            after = self.client.get_record(self.record_id)
        except FleetguardError:
            # The write was acknowledged: a read-back that fails does not undo it.
            after = None
        return after if after is not None else predicted

    def _give_up(self):
        in_flight = self.unanswered.get(self.current.get("version"))
        if in_flight is not None:
            # A PUT that got no answer at all may still be on its way, and can land while the record is at the
            # version it carries. Wait for it, or for the version to move on, before giving up.
            return self._settle_in_flight(in_flight)
        if self.lost is not None and self.last_error is self.lost and self.lost.status is not None:
            # The server answered the last PUT with a fault, and the re-read showed it had not landed.
            raise give_up(self.lost, False, MAX_WRITE_ATTEMPTS)
        raise self._kept_changing()

    def _settle_in_flight(self, in_flight):
        in_flight_version = self.current.get("version")

        def settled(record):
            return record is None or record.get("version") != in_flight_version or not changed_fields(record, self.desired)

        fresh, never_settled = self.records.settle([self.record_id], settled)
        self.current = fresh[self.record_id]
        if self.current is None:
            raise NotFoundError("the record was deleted while this task was updating it",
                                method="GET", path="device_records/%s" % self.record_id)
        self.versions.append(self.current.get("version"))
        if not changed_fields(self.current, self.desired):
            return Change(self.first_seen, self.current, changed=True)
        if never_settled:
            raise give_up(in_flight, True, MAX_WRITE_ATTEMPTS)
        raise self._kept_changing()

    def _kept_changing(self):
        return ApiError("gave up after %d attempts: the record kept changing under us (version read first %s, last %s)"
                        % (MAX_WRITE_ATTEMPTS, self.versions[0], self.versions[-1]), method="PUT",
                        path="device_records/%s" % self.record_id)
