# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""Passes over every Feishu device record, for a change source: Feishu has no delta API.

A pass lists every record, 100 a page, through FeishuClient.list_page (the list quota of 10 per second, shared with
every process of the controller that uses the same app). Each record's `version` moves with every change: a record
whose version is the one of the last complete pass has not changed, so only the others are compared field by field.
A pass with a page that failed is incomplete: what it read counts, but a record it did not see is not gone.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.fleetguard.devices.plugins.module_utils.change_arguments import property_names, source_options
from ansible_collections.fleetguard.devices.plugins.module_utils.change_poller import ChangePoller
from ansible_collections.fleetguard.devices.plugins.module_utils.change_state import utc_now
from ansible_collections.fleetguard.devices.plugins.module_utils.device_changes import ChangeTracker
from ansible_collections.fleetguard.devices.plugins.module_utils.errors import ApiError, FleetguardError
from ansible_collections.fleetguard.devices.plugins.module_utils.feishu_client import RECORDS_PATH
from ansible_collections.fleetguard.devices.plugins.module_utils.feishu_client import MAX_PAGE_SIZE, FeishuClient
from ansible_collections.fleetguard.devices.plugins.module_utils.feishu_records import enum_names
from ansible_collections.fleetguard.devices.plugins.module_utils.options import FEISHU_OPTIONS

ID_KEY = "device_record_id"
VERSION_KEY = "version"
IDENTITY_FIELDS = (ID_KEY, VERSION_KEY, "device_name", "serial_number")
# A pass lists every record (a tenant of 10,000 records is 100 list calls, 10 seconds of the list quota): polls closer
# than this would spend the quota the modules and inventory plugins of the same app need.
MINIMUM_INTERVAL = 30


class FeishuPass:
    """What one pass read: `records` (enum fields by name, under "id" too), `complete` (every page was read),
    `error` (the failure that ended an incomplete pass) and `calls` (list calls answered)."""

    def __init__(self):
        self.records = []
        self.complete = False
        self.error = None
        self.calls = 0


def read_pass(client, page_size=MAX_PAGE_SIZE):
    """Every record, page by page. A failed page (after the transport's retries) ends the pass incomplete: the next
    page's token was in the answer that did not come. So does a page_token already listed in this pass, which would
    list the same pages for ever."""
    result = FeishuPass()
    params = {"page_size": page_size}
    listed = set()
    while True:
        try:
            records, token = client.list_page(params)
        except FleetguardError as error:
            result.error = error
            return result
        result.calls += 1
        for record in records:
            named = enum_names(record)
            named["id"] = record[ID_KEY]
            result.records.append(named)
        if not token:
            result.complete = True
            return result
        if token in listed:
            result.error = ApiError("Feishu answered the list call with a page_token already listed in this pass",
                                    method="GET", path=RECORDS_PATH, status=200)
            return result
        listed.add(token)
        params = {"page_size": page_size, "page_token": token}


def changed_records(records, snapshot):
    """The records whose version differs from the snapshot's (or that are new): only these can hold a change."""
    return [record for record in records
            if record["id"] not in snapshot or snapshot[record["id"]].get(VERSION_KEY) != record.get(VERSION_KEY)]


class FeishuDeviceRecordChanges(ChangePoller):
    """The Feishu change source's passes: the first one (no state) sets the baseline from a complete pass; each later
    one compares the records whose version moved, and reports the records a complete pass no longer lists."""

    SOURCE = "fleetguard.devices.feishu_device_record_changes"
    DIRECTORY = "feishu"
    TABLE = dict(FEISHU_OPTIONS, **source_options(MINIMUM_INTERVAL))

    def __init__(self, args):
        super(FeishuDeviceRecordChanges, self).__init__(args)
        # An empty list is no list: every field, as the state's scope says.
        self.fields = property_names(self.SOURCE, self.params["properties"])

    def connect(self):
        client = FeishuClient.from_params(self.params)
        if client.tokens.can_refresh:
            client.tokens.get()
        return client

    def scope(self):
        """Every tenant is behind the same base_url: the state belongs to the app (its tenant's records). A ready
        tenant_access_token names no app."""
        return dict(directory=self.DIRECTORY, endpoint=self.client.transport.base_url, app=self.params.get("app_id"),
                    properties=sorted(self.fields) if self.fields else None)

    def cursor_problem(self, cursor):
        return None if cursor is True else "its cursor is not the mark of a complete pass"

    def new_tracker(self, snapshot):
        return ChangeTracker(self.DIRECTORY, self.fields, identity=IDENTITY_FIELDS, ignored=(VERSION_KEY,), whole=True,
                             snapshot=snapshot)

    def read_round(self):
        now = utc_now()
        result = read_pass(self.client)
        self.round_info = dict(calls=result.calls, complete=result.complete, records=len(result.records),
                               error=str(result.error) if result.error else None)
        if result.error is not None and (self.baseline or self.fatal(result.error)):
            # A baseline must hold every record, or the next complete pass would call the missing ones new.
            raise result.error
        present = [record["id"] for record in result.records] if result.complete else None
        candidates = changed_records(result.records, self.tracker.snapshot)
        events, snapshot = self.tracker.observe(candidates, present=present, now=now)
        if self.baseline:
            events = self.baseline_events(events)
        return events, True, snapshot
