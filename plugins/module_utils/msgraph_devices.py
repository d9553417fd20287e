# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""Microsoft Graph devices: lookups, and bringing many devices to a desired state in batches.

The directory speaks the client's device verbs only (find, get, patch, delete, iterate: msgraph_client.py), which
send reads and writes in `$batch` calls of 20; it runs those calls on its own workers (bulk.run_each), as the
Feishu directory runs its records. PATCH carries only the properties that differ. A write whose answer was lost
(a 5xx, a reset) is re-read before it is sent again. The properties and their checks are msgraph_properties.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.fleetguard.devices.plugins.module_utils.bulk import run_each
from ansible_collections.fleetguard.devices.plugins.module_utils.comparison import (
    apply_changes,
    changed_fields,
    managed_view,
)
from ansible_collections.fleetguard.devices.plugins.module_utils.errors import (
    ApiError,
    NotFoundError,
    RefusedBeforeWrite,
    UncertainWrite,
    shown_text,
)
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_client import BATCHES_IN_FLIGHT
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_properties import (
    APP_ONLY_ANY_OS,
    NOT_WINDOWS,
    WINDOWS,
    windows_class,
)
from ansible_collections.fleetguard.devices.plugins.module_utils.outcomes import Change
from ansible_collections.fleetguard.devices.plugins.module_utils.settle import give_up, settle

MAX_WRITE_ATTEMPTS = 3


class UnpredictableWrite(UncertainWrite):
    """A write check mode cannot promise: Graph's documented rules do not say whether it will be taken.
    Reported as the outcome "uncertain", like a write whose answer was lost."""

    def __init__(self, message):
        super(UnpredictableWrite, self).__init__(message)


def device_view(body):
    """A device as Graph returned it, without OData annotations (@odata.context, @odata.type): they depend on
    the request, not on the device, so real runs and check mode return the same keys."""
    return dict((key, value) for key, value in body.items() if not key.startswith("@odata."))


def graph_fold(value):
    """The value as Graph stores it: an empty string is stored as null."""
    return None if value == "" else value


def predict(device, desired):
    """The device once `desired` is written: the properties that differ applied, as Graph stores them."""
    delta = changed_fields(device, desired, graph_fold)
    return apply_changes(device, fold_values(delta))


def fold_values(values):
    return dict((key, fold_values(value) if isinstance(value, dict) else graph_fold(value))
                for key, value in values.items())


class GraphDevices:
    """The devices of one Entra tenant (or of one user, beta), through a GraphClient, read and written
    in batches of 20, a few batches in flight."""

    ID_KEY = "id"
    NOUN = "device"
    # What a diff shows of a deleted device.
    ABSENT_VIEW = {"displayName": None, "deviceId": None, "operatingSystem": None}

    def __init__(self, client, address, workers=BATCHES_IN_FLIGHT):
        """`address` (msgraph_odata.DeviceAddress): the collection, and the properties a read asks for."""
        self.client = client
        self.address = address
        self.workers = workers

    def _each(self, chunks, work):
        """This directory's workers, handed to the client's batch verbs: one $batch call per worker."""
        return run_each(chunks, work, workers=self.workers)

    @staticmethod
    def label(device):
        name = device.get("displayName")
        return "device %s%s" % (device.get("id"), " (%s)" % name if name else "")

    @staticmethod
    def view(device, desired):
        """The properties of `desired` as the device has them: what --diff shows."""
        return managed_view(device, desired)

    # --- finding devices ------------------------------------------------------------------------

    def resolve(self, field, values):
        """Map each value of `field` (id, device_id or display_name) to the devices it names, read with batched
        GETs: ({value: [device, ...]}, hints), where hints are the exact names Graph's case-blind match found for
        values that matched nothing exactly: {value: [names]}."""
        values = list(dict.fromkeys(values))
        found = self.client.find_devices(self.address, field, values, self._each)
        matches, hints = {}, {}
        for value, devices in zip(values, found):
            devices = [device_view(device) for device in devices]
            # Graph compares display names without case; this collection wants the exact name.
            matches[value] = [d for d in devices if field != "display_name" or d.get("displayName") == value]
            if not matches[value] and devices:
                hints[value] = sorted(set(d["displayName"] for d in devices if d.get("displayName")))
        return matches, hints

    def iter_matching(self, odata_filter=None, advanced_query=False, limit=None, on_page=None):
        """Every device of the collection that matches a raw OData $filter, following every page.

        Graph answers advanced queries (ne, not, endsWith, extension attributes) only with
        `ConsistencyLevel: eventual` and `$count=true`: `advanced_query` sends both.
        """
        pages = self.client.iter_devices(self.address, odata_filter, advanced_query, limit=limit, on_page=on_page)
        try:
            for device in pages:
                yield device_view(device)
        except ApiError as exc:
            if exc.api_code == "Request_UnsupportedQuery" and not advanced_query:
                exc.message += " (filters with ne, not, endsWith or on extensionAttributes need advanced_query: true)"
            raise

    def read(self, object_ids):
        """Fresh reads of devices by object id: {id: device or None when gone}."""
        devices = self.client.get_devices(self.address, object_ids, self._each)
        return dict((object_id, None if device is None else device_view(device)) for object_id, device in devices.items())

    # --- writing devices ------------------------------------------------------------------------

    def app_only_limits(self, planned):
        """What Graph's app-only rule says of each planned change: (refused, unpredictable), each a list of
        (device, message). Refused: a non-Windows device, and more than extensionAttributes. Unpredictable: the
        same change on a device whose operatingSystem Graph's rule does not place (windows_class).

        The rule is the tenant collection's (https://learn.microsoft.com/en-us/graph/api/device-update); the
        beta user-scoped collection takes its Project Rome properties on any platform.
        """
        if not self.client.app_only or self.address.user:
            return [], []
        refused, unpredictable = [], []
        for device, delta in planned:
            blocked = sorted(set(delta) - APP_ONLY_ANY_OS)
            side = windows_class(device.get("operatingSystem"))
            if not blocked or side == WINDOWS:
                continue
            runs = "runs %s" % shown_text(device["operatingSystem"]) if device.get("operatingSystem") else "has no operatingSystem"
            if side == NOT_WINDOWS:
                refused.append((device, "%s %s: an app-only caller may change only extensionAttributes there, not %s"
                                % (self.label(device), runs, ", ".join(blocked))))
            else:
                unpredictable.append((device, "%s %s: Graph lets an app-only caller change only extensionAttributes of"
                                      " devices whose operatingSystem is not Windows, and does not say whether this one"
                                      " counts; check mode cannot tell whether Graph takes %s (a real run sends it and"
                                      " reports Graph's answer)" % (self.label(device), runs, ", ".join(blocked))))
        return refused, unpredictable

    def converge(self, devices, desired, check_mode=False):
        """PATCH every device that differs from `desired`, in batches. Returns {id: Change}.

        Check mode follows the same path and stops before the first write.
        """
        outcome = {}
        planned = []
        for device in devices:
            delta = changed_fields(device, desired, graph_fold)
            if delta:
                planned.append((device, delta))
            else:
                outcome[device["id"]] = Change(device, device, changed=False)
        refused, unpredictable = self.app_only_limits(planned)
        if refused:
            raise RefusedBeforeWrite("; ".join(message for dummy, message in refused))
        if check_mode:
            outcome.update(self._predicted(planned, desired, unpredictable))
        else:
            outcome.update(_PatchRun(self, planned, desired).run())
        return outcome

    @staticmethod
    def _predicted(planned, desired, unpredictable):
        """What check mode reports: each planned device as the PATCH would leave it, or why nobody can say."""
        outcome = dict((device["id"], Change(device, predict(device, desired), changed=True)) for device, dummy in planned)
        for device, message in unpredictable:
            outcome[device["id"]] = Change(device, error=UnpredictableWrite(message))
        return outcome

    def remove(self, devices, check_mode=False):
        """DELETE devices in batches. Already gone is not a change; a lost answer is settled by re-reads."""
        if check_mode:
            return dict((d["id"], Change(d, {}, changed=True)) for d in devices)
        outcome = {}
        by_id = dict((d["id"], d) for d in devices)
        pending, last_error, unsettled = list(devices), {}, []
        for dummy_round in range(MAX_WRITE_ATTEMPTS):
            answers = self.client.delete_devices(self.address, [d["id"] for d in pending], self._each)
            unsure, lost = [], []
            for device, answer in zip(pending, answers):
                if answer.error is None or answer.status == 404:
                    outcome[device["id"]] = Change(device, {}, changed=answer.status != 404)
                elif answer.error.maybe_applied:
                    (lost if answer.status is None else unsure).append(device["id"])
                    last_error[device["id"]] = answer.error
                else:
                    outcome[device["id"]] = Change(device, error=answer.error)
            fresh, unsettled = self.settle(unsure, lost, lambda device: device is None)
            pending = []
            for object_id, device in fresh.items():
                if device is None:
                    outcome[object_id] = Change(by_id[object_id], {}, changed=True)
                else:
                    pending.append(by_id[object_id])
            if not pending:
                break
        for device in pending:
            error = give_up(last_error[device["id"]], device["id"] in unsettled, MAX_WRITE_ATTEMPTS)
            outcome[device["id"]] = Change(device, error=error)
        return outcome

    def settle(self, unsure, lost, shows):
        """Fresh reads of devices whose write may have landed: ({id: device or None}, [ids still unsettled]).

        A write answered with a 5xx is over: one read tells. One whose answer was lost may still be on its
        way: settle.settle reads it until it shows or its deadline passes.
        """
        fresh = self.read(unsure) if unsure else {}
        now, sleep = self.client.clock
        settled, unsettled = settle(self.read, lost, shows, self.client.timeout, now=now, sleep=sleep)
        fresh.update(settled)
        return fresh, unsettled


class _PatchRun:
    """The PATCH rounds of one converge: a lost or ambiguous answer is settled by re-reads, and only what did not
    land is sent again, at most MAX_WRITE_ATTEMPTS times."""

    def __init__(self, devices, planned, desired):
        self.devices = devices
        self.planned = planned
        self.desired = desired
        self.first_seen = dict((device["id"], device) for device, dummy in planned)
        self.outcome = {}
        self.landed = {}  # id -> the device as the PATCH answer gave it, or None (204: read it back)
        self.last_error = {}

    def run(self):
        pending, unsettled = self.planned, []
        for dummy_round in range(MAX_WRITE_ATTEMPTS):
            unsure, lost = self._send(pending)
            pending, unsettled = self._reread(unsure, lost)
            if not pending:
                break
        for device, dummy in pending:
            self.outcome[device["id"]] = Change(self.first_seen[device["id"]], error=give_up(
                self.last_error[device["id"]], device["id"] in unsettled, MAX_WRITE_ATTEMPTS))
        # A 204 carries no device, and needs no read-back: PATCH merges exactly the properties sent, so the
        # device is the one read before with them applied, as Graph stores them (the prediction of check mode).
        for object_id, device in self.landed.items():
            after = device or predict(self.first_seen[object_id], self.desired)
            self.outcome[object_id] = Change(self.first_seen[object_id], after, changed=True)
        return self.outcome

    def _send(self, pending):
        """One round of PATCHes: (ids answered with a fault, ids whose answer was lost)."""
        answers = self.devices.client.patch_devices(self.devices.address, [(device["id"], delta) for device, delta in pending],
                                                    self.devices._each)
        unsure, lost = [], []
        for (device, dummy), answer in zip(pending, answers):
            if answer.error is None:
                body = answer.body
                self.landed[device["id"]] = device_view(body) if isinstance(body, dict) and body.get("id") else None
            elif answer.error.maybe_applied:
                (lost if answer.status is None else unsure).append(device["id"])
                self.last_error[device["id"]] = answer.error
            else:
                self.outcome[device["id"]] = Change(device, error=answer.error)
        return unsure, lost

    def _shows(self, device):
        return device is None or not changed_fields(device, self.desired, graph_fold)

    def _reread(self, unsure, lost):
        """The answers were lost or ambiguous: read again, and keep to write only what did not land.
        Returns ([(device, delta) to send again], [ids still unsettled])."""
        fresh, unsettled = self.devices.settle(unsure, lost, self._shows)
        pending = []
        for object_id, device in fresh.items():
            if device is None:
                self.outcome[object_id] = Change(self.first_seen[object_id], error=NotFoundError(
                    "the device was deleted while this task was updating it", method="PATCH",
                    path=self.devices.address.by_id(object_id)))
            elif self._shows(device):
                self.landed[object_id] = device
            else:
                pending.append((device, changed_fields(device, self.desired, graph_fold)))
        return pending, unsettled
