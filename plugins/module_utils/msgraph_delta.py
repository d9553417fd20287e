# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""Graph's delta query on devices: `GET /devices/delta` (v1.0 and beta).

A round is the first call (or the saved `@odata.deltaLink`) and the `@odata.nextLink` pages after it, up to the page
that carries the next `@odata.deltaLink`
(https://learn.microsoft.com/en-us/graph/api/device-delta, https://learn.microsoft.com/en-us/graph/delta-query-overview).
Entries are devices created or changed since the link was issued; with `Prefer: return=minimal` an updated device
carries only the properties that changed. A device that is gone comes as `{"id": …, "@removed": {"reason": …}}`, and
the same device may come more than once in a round: its last entry is what the round ends with.
A delta link lives 7 days: an older or unknown one is answered with the error code `syncStateNotFound` (400, and
410 for some resources), which means a full round from the start. The links carry state tokens: they are followed
only on Graph's own host (GraphClient.url), never named in an error, and hidden from urllib3's debug log lines.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import logging
import re

from ansible_collections.fleetguard.devices.plugins.module_utils.change_arguments import property_names, source_options
from ansible_collections.fleetguard.devices.plugins.module_utils.change_poller import ChangePoller
from ansible_collections.fleetguard.devices.plugins.module_utils.change_state import utc_now
from ansible_collections.fleetguard.devices.plugins.module_utils.device_changes import ChangeTracker, resync_event
from ansible_collections.fleetguard.devices.plugins.module_utils.errors import ApiError, FleetguardError
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_client import API_VERSIONS, GraphClient, token_claims
from ansible_collections.fleetguard.devices.plugins.module_utils.options import MSGRAPH_OPTIONS

DELTA_PATH = "/devices/delta"
# Graph's name for a delta or skip token it no longer knows (and "resyncRequired" for the 410 form).
SYNC_STATE_CODES = ("syncStateNotFound", "resyncRequired", "syncStateInvalid")
# The properties the change sources track unless told otherwise: sign-in times move for every active device every
# two weeks, so they are left out.
DEFAULT_PROPERTIES = ("accountEnabled", "isCompliant", "isManaged", "displayName", "operatingSystem", "trustType",
                      "extensionAttributes")
# Every property of Graph's device resource, as Graph spells it in its answers (`$select` takes any case, the answer
# has this one): https://learn.microsoft.com/en-us/graph/api/resources/device (v1.0) and
# https://learn.microsoft.com/en-us/graph/api/resources/device?view=graph-rest-beta (the beta ones after them).
# msgraph_properties.READ_PROPERTIES (what the modules read) is a part of it.
DEVICE_PROPERTIES = dict.fromkeys(API_VERSIONS, (
    "accountEnabled", "alternativeSecurityIds", "approximateLastSignInDateTime", "complianceExpirationDateTime",
    "deletedDateTime", "deviceCategory", "deviceId", "deviceMetadata", "deviceOwnership", "deviceVersion", "displayName",
    "enrollmentProfileName", "enrollmentType", "extensionAttributes", "id", "isCompliant", "isManaged",
    "isManagementRestricted", "isRooted", "managementType", "manufacturer", "mdmAppId", "model",
    "onPremisesLastSyncDateTime", "onPremisesSecurityIdentifier", "onPremisesSyncEnabled", "operatingSystem",
    "operatingSystemVersion", "physicalIds", "profileType", "registrationDateTime", "systemLabels", "trustType"))
DEVICE_PROPERTIES["beta"] += ("alternativeNames", "createdDateTime", "domainName", "hostnames", "kind", "name", "platform",
                              "status")
IDENTITY_PROPERTIES = ("id", "deviceId", "displayName")
MINIMAL = {"Prefer": "return=minimal"}
# Graph refuses polls closer than this (seconds): a delta link answers only what changed since the last call.
MINIMUM_INTERVAL = 5
# urllib3 writes every request line, query included, to its debug log (ansible-rulebook -vv prints it): the delta and
# skip tokens of those lines are hidden, as they are from this collection's own errors.
STATE_TOKEN = re.compile(r"((?:\$|%24)(?:delta|skip)token=)[^&\s\"']+", re.IGNORECASE)
URLLIB3_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry")


class StateTokenFilter(logging.Filter):
    """Rewrites a log record whose message quotes a delta or skip token, with the token hidden."""

    def filter(self, record):
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot be formatted is left to logging, which reports it
            return True
        hidden = STATE_TOKEN.sub(r"\1<hidden>", message)
        if hidden != message:
            record.msg, record.args = hidden, ()
        return True


def hide_state_tokens():
    """Install the filter on urllib3's loggers, once per process."""
    for name in URLLIB3_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, StateTokenFilter) for existing in logger.filters):
            logger.addFilter(StateTokenFilter())


class DeltaExpired(FleetguardError):
    """Graph no longer knows the delta or skip token of a round: only a full round can start over."""


class DeltaRound:
    """What one round read: `entries` (devices, possibly partial), `removed` (ids), `delta_link` for the next round,
    `calls` (HTTP calls to Graph) and `full` (True when the round started without a delta link)."""

    def __init__(self, full):
        self.full = full
        self.entries = []
        self.removed = []
        self.delta_link = None
        self.calls = 0


def is_expired(error):
    return isinstance(error, ApiError) and error.status in (400, 410) and error.api_code in SYNC_STATE_CODES


class GraphDeltaReader:
    """Rounds of the device delta query through a GraphClient (`request(method, path, params, headers)`)."""

    def __init__(self, client, properties=DEFAULT_PROPERTIES, minimal=True):
        self.client = client
        self.properties = list(properties)
        self.headers = dict(MINIMAL) if minimal else {}

    @property
    def select(self):
        selected = list(IDENTITY_PROPERTIES) + [name for name in self.properties if name not in IDENTITY_PROPERTIES]
        return ",".join(selected)

    def read(self, delta_link=None):
        """One round from `delta_link` (None: a full round of every device). Raises DeltaExpired when Graph no longer
        knows a token of the round, any other FleetguardError as the client raised it: nothing of a round that did
        not end is returned, so the caller reads it again from the same link. A link to another host than Graph's
        (GraphClient.url refuses it) or a nextLink already read in the round (it would page for ever) fails the
        round."""
        result = DeltaRound(full=delta_link is None)
        path, params = (delta_link, None) if delta_link else (DELTA_PATH, {"$select": self.select})
        read = set()
        while path:
            read.add(path)
            body = self._page(path, params)
            result.calls += 1
            self._take(result, body)
            path, params = body.get("@odata.nextLink"), None
            result.delta_link = body.get("@odata.deltaLink")
            self._check_links(path, result.delta_link, read)
        if not result.delta_link:
            raise ApiError("Graph ended a delta round without an @odata.deltaLink", method="GET", path=DELTA_PATH,
                           status=200)
        return result

    def _page(self, path, params):
        try:
            return self.client.request("GET", path, params=params, headers=self.headers).json
        except FleetguardError as error:
            if is_expired(error):
                raise DeltaExpired("Graph no longer knows the delta token (%s): a full round starts over"
                                   % error.api_code, method="GET", path=DELTA_PATH, status=error.status,
                                   api_code=error.api_code, request_id=error.request_id)
            # The links carry state tokens in their query: errors (and so log lines) name the path only.
            error.path = DELTA_PATH
            raise

    def _check_links(self, next_link, delta_link, read):
        """Refuse, when read, a link that would send the token to another host or page the same link again."""
        for link in (next_link, delta_link):
            if link:
                try:
                    self.client.url(link)
                except FleetguardError as error:
                    error.path = DELTA_PATH
                    raise
        if next_link in read:
            raise ApiError("Graph answered the delta query with an @odata.nextLink to a page already read in this"
                           " round", method="GET", path=DELTA_PATH, status=200)

    @staticmethod
    def _take(result, body):
        values = body.get("value") if isinstance(body, dict) else None
        links = [body.get(key) for key in ("@odata.nextLink", "@odata.deltaLink")] if isinstance(body, dict) else []
        if not isinstance(values, list) or not all(isinstance(item, dict) and isinstance(item.get("id"), str)
                                                   for item in values):
            raise ApiError("Graph answered the delta query with a page this collection does not understand",
                           method="GET", path=DELTA_PATH, status=200)
        if sum(1 for link in links if isinstance(link, str) and link) != 1:
            raise ApiError("Graph answered the delta query with a page that has not exactly one of @odata.nextLink"
                           " and @odata.deltaLink", method="GET", path=DELTA_PATH, status=200)
        for item in values:
            object_id = item["id"].lower()
            if "@removed" in item:
                if object_id not in result.removed:
                    result.removed.append(object_id)
                continue
            # A device removed earlier in the round and listed again is back (the last entry counts).
            if object_id in result.removed:
                result.removed.remove(object_id)
            entry = dict((key, value) for key, value in item.items() if not key.startswith("@"))
            entry["id"] = object_id
            result.entries.append(entry)


class GraphDeviceChanges(ChangePoller):
    """The Graph change source's rounds: the first one (no state) reads every device and sets the baseline; each
    later one calls the saved delta link; a link Graph no longer knows means a full round compared with the
    snapshot, announced by one `resync` event."""

    SOURCE = "fleetguard.devices.msgraph_device_changes"
    DIRECTORY = "msgraph"
    TABLE = dict(MSGRAPH_OPTIONS, api_version=dict(type="str", default="v1.0", choices=list(API_VERSIONS)),
                 **source_options(MINIMUM_INTERVAL))

    def __init__(self, args):
        super(GraphDeviceChanges, self).__init__(args)
        known = dict((name.lower(), name) for name in DEVICE_PROPERTIES[self.params["api_version"]])
        self.properties = property_names(self.SOURCE, self.params["properties"], known) or list(DEFAULT_PROPERTIES)
        self.reader = None
        hide_state_tokens()

    def connect(self):
        client = GraphClient.from_params(self.params, api_version=self.params["api_version"])
        client.tokens.get()
        self.reader = GraphDeltaReader(client, self.properties)
        return client

    def scope(self):
        """Every tenant is behind the same endpoint: the state belongs to the tenant the token is for."""
        tenant = token_claims(self.client.tokens.get()).get("tid") or self.params.get("tenant_id")
        return dict(directory=self.DIRECTORY, endpoint=self.client.base, tenant=tenant, properties=sorted(self.properties))

    def cursor_problem(self, cursor):
        if not isinstance(cursor, str) or not cursor:
            return "its cursor is not a delta link"
        try:
            self.client.url(cursor)
        except FleetguardError as error:
            return "its delta link: %s" % error.message
        return None

    def new_tracker(self, snapshot):
        return ChangeTracker(self.DIRECTORY, self.properties, identity=IDENTITY_PROPERTIES, snapshot=snapshot)

    def read_round(self):
        now = utc_now()
        resync = False
        try:
            result = self.reader.read(self.cursor)
        except DeltaExpired:
            resync = True
            result = self.reader.read(None)
        self.round_info = dict(calls=result.calls, full=result.full, resync=resync, entries=len(result.entries))
        if self.baseline:
            events, snapshot = self.tracker.observe(result.entries, now=now)
            return self.baseline_events(events), result.delta_link, snapshot
        present = [entry["id"] for entry in result.entries] if result.full else None
        events, snapshot = self.tracker.observe(result.entries, result.removed, present=present, now=now)
        if resync:
            events.insert(0, resync_event(self.DIRECTORY, now))
        return events, result.delta_link, snapshot
