# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""Microsoft Graph devices: their properties, lookups and bringing many devices to a desired state in batches.

Reads and writes go through `POST /$batch` (20 per call). PATCH carries only the properties that differ.
A write whose answer was lost (a 5xx, a reset) is re-read before it is sent again. Where a device lives and
how it is queried (URLs, OData literals) is msgraph_odata.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.fleetguard.devices.plugins.module_utils.comparison import (
    apply_changes,
    changed_fields,
    managed_view,
)
from ansible_collections.fleetguard.devices.plugins.module_utils.errors import (
    ApiError,
    InputError,
    NotFoundError,
    UncertainWrite,
    shown,
    shown_text,
)
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_odata import PAGE_MAX, query_string
from ansible_collections.fleetguard.devices.plugins.module_utils.outcomes import Change
from ansible_collections.fleetguard.devices.plugins.module_utils.settle import give_up, settle

EXTENSION_ATTRIBUTES = ["extensionAttribute%d" % n for n in range(1, 16)]
EXTENSION_ATTRIBUTE_MAX = 1024
# displayName is required and at most 256 characters
# (https://learn.microsoft.com/en-us/graph/api/resources/device#properties).
DISPLAY_NAME_MAX = 256

# Module option -> Graph property, for the properties PATCH may set.
V1_PROPERTIES = dict(
    account_enabled="accountEnabled",
    new_display_name="displayName",
    operating_system="operatingSystem",
    operating_system_version="operatingSystemVersion",
    is_compliant="isCompliant",
    is_managed="isManaged",
    extension_attributes="extensionAttributes",
)
# Project Rome properties of the beta user-scoped collection
# (https://learn.microsoft.com/en-us/graph/api/resources/device?view=graph-rest-beta).
BETA_PROPERTIES = dict(name="name", manufacturer="manufacturer", model="model", kind="kind", status="status",
                       platform="platform")
# Graph's rule for app-only callers (https://learn.microsoft.com/en-us/graph/api/device-update): "In
# application-only scenarios and for non-Windows devices, that is, where the operatingSystem property is not
# Windows, the app can update only the extensionAttributes property."
APP_ONLY_ANY_OS = frozenset(["extensionAttributes"])
WINDOWS, NOT_WINDOWS, UNDOCUMENTED = "windows", "not_windows", "undocumented"
MAX_WRITE_ATTEMPTS = 3


def windows_class(operating_system):
    """Which side of Graph's app-only rule a device's operatingSystem puts it on.

    WINDOWS: exactly the value the rule names. NOT_WINDOWS: a value that does not mention Windows (Android,
    iOS, MacMDM, Linux; Graph refuses these, as reported). UNDOCUMENTED: no value, or another spelling that
    mentions Windows ("Windows Server", "windows"): Graph does not say which side they are on, so nobody can
    predict its answer. The module, its check mode and the stale_devices filter all ask this one function.
    """
    if operating_system == "Windows":
        return WINDOWS
    if not isinstance(operating_system, str) or not operating_system.strip() or "windows" in operating_system.lower():
        return UNDOCUMENTED
    return NOT_WINDOWS


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


def extension_attribute_name(key):
    """The canonical name of an extension attribute however it is cased (EXTENSIONATTRIBUTE3 -> extensionAttribute3),
    or None when `key` names none."""
    return _EXTENSION_ATTRIBUTE_NAMES.get(str(key).strip().lower())


_EXTENSION_ATTRIBUTE_NAMES = dict((name.lower(), name) for name in EXTENSION_ATTRIBUTES)


def normalize_extension_attributes(value):
    """Canonical key names, string-or-null values, each at most 1024 characters; refused before any write."""
    if value is None:
        return None
    normalized = {}
    for key, attribute in value.items():
        name = extension_attribute_name(key)
        if name is None:
            raise InputError("extension_attributes key %s is not one of extensionAttribute1..extensionAttribute15" % shown(key))
        if attribute is not None and not isinstance(attribute, str):
            raise InputError("extension_attributes.%s must be a string or null, not %s" % (name, shown(attribute)))
        if attribute is not None and len(attribute) > EXTENSION_ATTRIBUTE_MAX:
            raise InputError("extension_attributes.%s is %d characters long; Graph allows at most %d"
                             % (name, len(attribute), EXTENSION_ATTRIBUTE_MAX))
        normalized[name] = attribute
    return normalized


def desired_properties(params, api_version):
    """The Graph properties the user set, from module options."""
    options = dict(V1_PROPERTIES)
    if api_version == "beta" and params.get("user"):
        options.update(BETA_PROPERTIES)
    desired = {}
    for option, prop in options.items():
        value = params.get(option)
        if value is None:
            continue
        desired[prop] = normalize_extension_attributes(value) if option == "extension_attributes" else value
    name = desired.get("displayName")
    if name is not None and not (0 < len(name) <= DISPLAY_NAME_MAX):
        # Refused here, so check mode fails as the real run would, before any request.
        raise InputError("new_display_name is %d characters long; Graph requires 1 to %d (%s)"
                         % (len(name), DISPLAY_NAME_MAX, shown(name)))
    if desired.get("extensionAttributes") == {}:
        del desired["extensionAttributes"]
    return desired


class GraphDevices:
    """The devices of one Entra tenant (or of one user, beta), through a GraphClient, read and written
    in batches of 20."""

    ID_KEY = "id"
    NOUN = "device"
    # Exact names Graph's case-blind match found for values that matched nothing exactly: {value: [names]}.
    hints = {}
    # What a diff shows of a deleted device.
    ABSENT_VIEW = {"displayName": None, "deviceId": None, "operatingSystem": None}

    def __init__(self, client, address):
        self.client = client
        self.address = address

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
        """Map each value of `field` (id, device_id or display_name) to the devices it names:
        {value: [device, ...]}, read with batched GETs."""
        values = list(dict.fromkeys(values))
        address = self.address
        requests = []
        for index, value in enumerate(values):
            if field == "id":
                url = address.read(address.by_id(value))
            elif field == "device_id":
                key_path = address.by_device_id(value)
                url = address.read(key_path) if key_path else address.search("deviceId", value)
            else:
                url = address.search("displayName", value)
            requests.append(dict(id=str(index + 1), method="GET", url=url))
        answers = self.client.batch(requests)
        matches = {}
        self.hints = {}
        for request, value in zip(requests, values):
            answer = answers[request["id"]]
            if answer.status == 404:
                matches[value] = []
            elif answer.error is not None:
                raise answer.error
            elif "value" in answer.body:
                found = [device_view(d) for d in answer.body["value"]]
                # Graph compares display names without case; this collection wants the exact name.
                matches[value] = [d for d in found if field != "display_name" or d.get("displayName") == value]
                if not matches[value] and found:
                    self.hints[value] = sorted(set(d["displayName"] for d in found if d.get("displayName")))
            else:
                matches[value] = [device_view(answer.body)]
        return matches

    def iter_matching(self, odata_filter=None, advanced_query=False, limit=None, on_page=None):
        """Every device of the collection that matches a raw OData $filter, following every page.

        Graph answers advanced queries (ne, not, endsWith, extension attributes) only with
        `ConsistencyLevel: eventual` and `$count=true`: `advanced_query` sends both.
        """
        options = [("$filter", odata_filter), ("$select", self.address.select),
                   ("$top", min(limit, PAGE_MAX) if limit else PAGE_MAX)]
        headers = None
        if advanced_query:
            options.append(("$count", "true"))
            headers = {"ConsistencyLevel": "eventual"}
        pages = self.client.iter_pages(self.address.collection + query_string(options), headers=headers, limit=limit,
                                       on_page=on_page)
        try:
            for device in pages:
                yield device_view(device)
        except ApiError as exc:
            if exc.api_code == "Request_UnsupportedQuery" and not advanced_query:
                exc.message += " (filters with ne, not, endsWith or on extensionAttributes need advanced_query: true)"
            raise

    def read(self, object_ids):
        """Fresh reads of devices by object id: {id: device or None when gone}."""
        requests = [dict(id=str(n + 1), method="GET", url=self.address.read(self.address.by_id(oid)))
                    for n, oid in enumerate(object_ids)]
        answers = self.client.batch(requests)
        devices = {}
        for request, object_id in zip(requests, object_ids):
            answer = answers[request["id"]]
            if answer.status == 404:
                devices[object_id] = None
            elif answer.error is not None:
                raise answer.error
            else:
                devices[object_id] = device_view(answer.body)
        return devices

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
            raise InputError("nothing was changed: " + "; ".join(message for dummy, message in refused))
        first_seen = dict((device["id"], device) for device, dummy in planned)
        if check_mode:
            for device, dummy in planned:
                outcome[device["id"]] = Change(device, predict(device, desired), changed=True)
            for device, message in unpredictable:
                outcome[device["id"]] = Change(device, error=UnpredictableWrite(message))
            return outcome

        landed = {}  # id -> the device as the PATCH answer gave it, or None (204: read it back)
        pending, last_error = planned, {}
        for dummy_round in range(MAX_WRITE_ATTEMPTS):
            requests = [dict(id=str(n + 1), method="PATCH", url=self.address.by_id(device["id"]), body=delta)
                        for n, (device, delta) in enumerate(pending)]
            answers = self.client.batch(requests)
            unsure, lost = [], []
            for request, (device, delta) in zip(requests, pending):
                answer = answers[request["id"]]
                if answer.error is None:
                    body = answer.body
                    landed[device["id"]] = device_view(body) if isinstance(body, dict) and body.get("id") else None
                elif answer.error.maybe_applied:
                    (lost if answer.status is None else unsure).append(device["id"])
                    last_error[device["id"]] = answer.error
                else:
                    outcome[device["id"]] = Change(device, error=answer.error)

            def shows(device):
                return device is None or not changed_fields(device, desired, graph_fold)

            # The answers were lost or ambiguous: read again, and write only what did not land.
            fresh, unsettled = self.settle(unsure, lost, shows)
            pending = []
            for object_id, device in fresh.items():
                if device is None:
                    outcome[object_id] = Change(first_seen[object_id], error=NotFoundError(
                        "the device was deleted while this task was updating it", method="PATCH",
                        path=self.address.by_id(object_id)))
                elif shows(device):
                    landed[object_id] = device
                else:
                    pending.append((device, changed_fields(device, desired, graph_fold)))
            if not pending:
                break
        for device, dummy in pending:
            outcome[device["id"]] = Change(first_seen[device["id"]], error=give_up(
                last_error[device["id"]], device["id"] in unsettled, MAX_WRITE_ATTEMPTS))

        # A 204 carries no device, and needs no read-back: PATCH merges exactly the properties sent, so the
        # device is the one read before with them applied, as Graph stores them (the prediction of check mode).
        for object_id, device in landed.items():
            after = device or predict(first_seen[object_id], desired)
            outcome[object_id] = Change(first_seen[object_id], after, changed=True)
        return outcome

    def remove(self, devices, check_mode=False):
        """DELETE devices in batches. Already gone is not a change; a lost answer is settled by re-reads."""
        if check_mode:
            return dict((d["id"], Change(d, {}, changed=True)) for d in devices)
        outcome = {}
        by_id = dict((d["id"], d) for d in devices)
        pending, last_error, unsettled = list(devices), {}, []
        for dummy_round in range(MAX_WRITE_ATTEMPTS):
            requests = [dict(id=str(n + 1), method="DELETE", url=self.address.by_id(d["id"]))
                        for n, d in enumerate(pending)]
            answers = self.client.batch(requests)
            unsure, lost = [], []
            for request, device in zip(requests, pending):
                answer = answers[request["id"]]
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
        settled, unsettled = settle(self.read, lost, shows, self.client.transport)
        fresh.update(settled)
        return fresh, unsettled
