"""`GET /{v1.0,beta}/devices/delta`: Graph's delta query on devices, as
https://learn.microsoft.com/en-us/graph/api/device-delta and https://learn.microsoft.com/en-us/graph/delta-query-overview
describe it.

- A round starts with the first call (`$select` allowed, encoded into the links from then on), with a saved
  `@odata.deltaLink` (`$deltatoken=…`), or with `$deltatoken=latest` (no entries, only a delta link of "now").
  Its pages of `delta_page_size` entries are chained by `@odata.nextLink` (`$skiptoken=…`); the last page carries
  the `@odata.deltaLink` of the state the round started from.
- Entries: the first round lists every device; later rounds the devices created, changed or deleted since the link
  was issued. A deleted device is `{"id": …, "@removed": {"reason": "deleted"}}`. An updated device carries every
  selected property, or with `Prefer: return=minimal` only those that changed (a new device carries all of them).
- Changes are found by comparing the directory with the snapshot a delta token stands for, so a test may change
  `sb.devices` directly (holding `sb.lock`) and the next round sees it.
- A token older than 7 days on the sandbox clock, unknown, of another API version, or expired by the test route
  (`expire_delta_tokens`, `POST /_sandbox/delta/expire`) is answered as Graph answers it: 400 `syncStateNotFound`
  (https://devblogs.microsoft.com/microsoft365dev/duration-of-change-tracking-tokens-for-identity-and-education-resources/).
"""

import base64
import copy
import itertools
import secrets

from sandbox import odata
from sandbox.msgraph_query import ApiError, DeviceQuery, bad_request
from sandbox.server import Response

DELTA_PAGE_SIZE = 100
TOKEN_LIFETIME = 7 * 86400
MAX_TOKENS = 2000  # the oldest are forgotten (a real service's token cache is finite too)
SYNC_STATE_NOT_FOUND = ("The sync state generation is not found. The delta token is expired and data must be "
                        "synchronized again.")
STATE_TOKENS = ("deltatoken", "skiptoken")


def sync_state_not_found():
    return ApiError(400, "syncStateNotFound", SYNC_STATE_NOT_FOUND)


def _split_state_tokens(query):
    """({"deltatoken": …, "skiptoken": …} found, the other query parameters); names without regard to case or `$`."""
    tokens, rest = {}, {}
    for name, value in query.items():
        key = name.lower().lstrip("$")
        if key in STATE_TOKENS:
            if isinstance(value, list) or key in tokens:
                raise bad_request(f"Query option '${key}' was specified more than once, but it must be specified at "
                                  "most once.")
            tokens[key] = value
        else:
            rest[name] = value
    if len(tokens) > 1:
        raise bad_request("$deltatoken and $skiptoken cannot be used together.")
    return tokens, rest


class DeltaEndpoint:
    """Mixin of GraphSandbox: the device delta query. Uses `devices`, `lock`, `url`, `current_time()` and
    `extension_attributes_by_default` of the composed class; `_init_delta()` must run in its constructor."""

    def _init_delta(self):
        self.delta_page_size = DELTA_PAGE_SIZE
        self._delta_states = {}  # delta token -> {"version", "select", "snapshot", "issued"}
        self._delta_rounds = {}  # round id -> {"version", "select", "entries", "token"}
        self._delta_ids = itertools.count(1)

    def expire_delta_tokens(self):
        """Forget every delta and skip token issued so far (their next use: syncStateNotFound); returns how many."""
        with self.lock:
            count = len(self._delta_states) + len(self._delta_rounds)
            self._delta_states.clear()
            self._delta_rounds.clear()
        return count

    def _delta_devices(self, request, caller):
        version = request.params["version"]
        tokens, rest = _split_state_tokens(request.query)
        minimal = "return=minimal" in (request.header("Prefer") or "").replace(" ", "").lower()
        with self.lock:
            if "skiptoken" in tokens:
                return self._delta_page(version, tokens["skiptoken"])
            if tokens.get("deltatoken") == "latest":
                select = self._delta_select(version, rest)
                return self._delta_page(version, self._new_round(version, select, []))
            if "deltatoken" in tokens:
                base = self._delta_state(version, tokens["deltatoken"])
                entries = self._delta_entries(base["snapshot"], self._delta_snapshot(version, base["select"]), minimal)
                return self._delta_page(version, self._new_round(version, base["select"], entries))
            select = self._delta_select(version, rest)
            entries = list(self._delta_snapshot(version, select).values())
            return self._delta_page(version, self._new_round(version, select, entries))

    def _delta_select(self, version, query):
        options = _options_or_400(query)
        delta_query = DeviceQuery(version, extension_attributes_by_default=self.extension_attributes_by_default)
        delta_query._parse_projection(options)
        return delta_query.selected

    def _delta_query(self, version, select):
        delta_query = DeviceQuery(version, extension_attributes_by_default=self.extension_attributes_by_default)
        delta_query._parse_projection({})
        delta_query.selected = select
        return delta_query

    def _delta_snapshot(self, version, select):
        """{object id: the device as the round's $select renders it}, in the directory's order."""
        delta_query = self._delta_query(version, select)
        snapshot = {}
        for device in self.devices.values():
            rendered = delta_query.render(device)
            rendered["id"] = device["id"]
            snapshot[device["id"]] = rendered
        return snapshot

    @staticmethod
    def _delta_entries(before, now, minimal):
        entries = []
        for object_id, device in now.items():
            old = before.get(object_id)
            if old is None:
                entries.append(copy.deepcopy(device))
            elif old != device:
                if minimal:
                    entries.append({"id": object_id, **{name: copy.deepcopy(value) for name, value in device.items()
                                                        if name != "id" and old.get(name) != value}})
                else:
                    entries.append(copy.deepcopy(device))
        for object_id in before:
            if object_id not in now:
                entries.append({"@odata.type": "#microsoft.graph.device", "id": object_id,
                                "@removed": {"reason": "deleted"}})
        return entries

    def _delta_state(self, version, token):
        state = self._delta_states.get(token)
        if state is None or state["version"] != version or self.current_time() - state["issued"] > TOKEN_LIFETIME:
            raise sync_state_not_found()
        return state

    def _new_round(self, version, select, entries):
        """Keep a round's entries for its pages and the snapshot its delta link will stand for; the skiptoken of
        its first page."""
        token = _opaque(secrets.token_bytes(24))
        self._delta_states[token] = {"version": version, "select": select, "issued": self.current_time(),
                                     "snapshot": self._delta_snapshot(version, select)}
        round_id = str(next(self._delta_ids))
        self._delta_rounds[round_id] = {"version": version, "select": select, "entries": entries, "token": token}
        while len(self._delta_states) > MAX_TOKENS:
            del self._delta_states[next(iter(self._delta_states))]
        while len(self._delta_rounds) > MAX_TOKENS:
            del self._delta_rounds[next(iter(self._delta_rounds))]
        return _opaque(f"{round_id}:0".encode())

    def _delta_page(self, version, skiptoken):
        try:
            round_id, offset = base64.urlsafe_b64decode(skiptoken.encode() + b"==").decode().split(":")
            offset = int(offset)
        except (ValueError, UnicodeDecodeError):
            raise sync_state_not_found() from None
        current = self._delta_rounds.get(round_id)
        if current is None or current["version"] != version:
            raise sync_state_not_found()
        end = offset + self.delta_page_size
        suffix = f"({','.join(current['select'])})" if current["select"] else ""
        body = {"@odata.context": f"{self.url}/{version}/$metadata#devices{suffix}"}
        base = f"{self.url}/{version}/devices/delta"
        if end < len(current["entries"]):
            body["@odata.nextLink"] = f"{base}?$skiptoken={_opaque(f'{round_id}:{end}'.encode())}"
        else:
            body["@odata.deltaLink"] = f"{base}?$deltatoken={current['token']}"
            del self._delta_rounds[round_id]
        body["value"] = copy.deepcopy(current["entries"][offset:end])
        return Response(200, body)


def _opaque(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _options_or_400(query):
    try:
        return odata.system_query_options(query, ("select",))
    except odata.ODataError as exc:
        raise bad_request(str(exc)) from exc
