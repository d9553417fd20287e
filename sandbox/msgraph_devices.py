"""The device endpoints of the Graph emulator.

- `/{v1.0,beta}/devices`: list, `$count`, get, PATCH (204) and DELETE by object id or by
  `(deviceId='…')` (https://learn.microsoft.com/en-us/graph/api/resources/device?view=graph-rest-1.0,
  https://learn.microsoft.com/en-us/graph/api/device-update?view=graph-rest-1.0).
- The beta user-scoped devices, `/beta/users/{id or UPN}/devices` and `/beta/me/devices`, with the
  Project Rome properties (https://learn.microsoft.com/en-us/graph/api/resources/device?view=graph-rest-beta).
  Their PATCH answers 200 with the device, as the beta "Update devices" draft page describes it:
  https://github.com/microsoftgraph/microsoft-graph-docs/blob/b423cfe124d34b94d8922eeb022553d00a43df98/doc-stubs/api/user-update-devices.md
"""

import copy
import re
import urllib.parse
import uuid

from sandbox.msgraph_data import base_device
from sandbox.msgraph_gateway import json_body
from sandbox.msgraph_query import ApiError, DeviceQuery, bad_request
from sandbox.msgraph_writes import apply_changes, checked_changes
from sandbox.odata import unquote_string
from sandbox.server import Response, split_target

GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
ME_NEEDS_DELEGATED = "/me request is only valid with delegated authentication flow."


def not_found(value):
    return ApiError(404, "Request_ResourceNotFound",
                    f"Resource '{value}' does not exist or one of its queried reference-property objects are not present.")


def object_id(text):
    if not GUID.fullmatch(text):
        raise bad_request(f"Invalid object identifier '{text}'.")
    return text.lower()


class DeviceEndpoints:
    """Mixin of GraphSandbox: the /devices handlers and the beta user-scoped ones.

    Handlers take (request, caller) and are wrapped by GraphGateway._graph. Uses from the composed
    class: `devices`, `users`, `user_devices`, `_find_user`, `extension_attributes_by_default`,
    and the Emulator's `lock` and `url`.
    """

    def add_device(self, registered_user=None, **fields):
        """Insert a device with the given v1.0/Rome fields over realistic defaults (duplicate
        displayNames allowed); `registered_user` (object id or UPN) registers it to that user."""
        with self.lock:
            new_id = str(fields.pop("id", None) or uuid.uuid4()).lower()
            device_id = str(fields.pop("deviceId", None) or uuid.uuid4())
            if new_id in self.devices:
                raise ValueError(f"device {new_id} already exists")
            if any(device["deviceId"].lower() == device_id.lower() for device in self.devices.values()):
                raise ValueError(f"deviceId {device_id} already exists (it is an alternate key)")
            owner = self._find_user(registered_user) if registered_user else None
            if registered_user and owner is None:
                raise ValueError(f"no user {registered_user}")
            device = base_device(
                device_id, new_id,
                fields.pop("displayName", f"FG-WS-{len(self.devices) + 1:04d}"),
                fields.pop("operatingSystem", "Windows"),
                fields.pop("operatingSystemVersion", None),
            )
            device["extensionAttributes"].update(fields.pop("extensionAttributes", None) or {})
            device.update(fields)
            self.devices[new_id] = device
            if owner:
                self.user_devices.setdefault(owner["id"], []).append(new_id)
            return copy.deepcopy(device)

    # /devices (v1.0 and beta)

    def _list_devices(self, request, caller):
        with self.lock:
            return self._collection(request, request.params["version"], list(self.devices.values()), "devices")

    def _count_devices(self, request, caller):
        if (request.header("ConsistencyLevel") or "").strip().lower() != "eventual":
            raise bad_request("$count is not currently supported.")
        query = self._collection_query(request, request.params["version"], counting=True)
        with self.lock:
            total = query.page(list(self.devices.values()))[2]
        return Response(200, str(total), content_type="text/plain")

    def _get_device(self, request, caller):
        version = request.params["version"]
        query = self._entity_query(request, version)
        with self.lock:
            device = self._find_device(request)
            return Response(200, {
                "@odata.context": f"{self.url}/{version}/$metadata#devices{query.context_suffix()}/$entity",
                **query.render(device, self._registered_users),
            })

    def _patch_device(self, request, caller):
        changes = json_body(request)
        with self.lock:
            device = self._find_device(request)
            apply_changes(device, checked_changes(changes, device, caller, rome=False))
        return Response(204)

    def _delete_device(self, request, caller):
        with self.lock:
            self._forget(self._find_device(request))
        return Response(204)

    def _forget(self, device):
        """Remove a device from the directory and from its users' collections; called with the lock held."""
        del self.devices[device["id"]]
        for owned in self.user_devices.values():
            if device["id"] in owned:
                owned.remove(device["id"])

    def _find_device(self, request):
        """The device named by /devices/{id} or /devices(deviceId='…'); raises 400 or 404."""
        if request.params.get("alternate") is None:
            key = object_id(urllib.parse.unquote(request.params["key"]))
            if key not in self.devices:
                raise not_found(key)
            return self.devices[key]
        predicate = urllib.parse.unquote(request.params["alternate"])
        named = re.fullmatch(r"\s*deviceId\s*=\s*(.*?)\s*", predicate, re.IGNORECASE | re.DOTALL)
        literal = named.group(1) if named else predicate.strip()
        value = unquote_string(literal)
        if value is None:
            raise bad_request(f"Invalid key predicate '({predicate})': the key must be a string literal in single "
                              "quotes, with quotes inside it doubled.")
        if not named:  # devices('{id}') is the OData spelling of devices/{id}
            key = object_id(value)
            if key not in self.devices:
                raise not_found(key)
            return self.devices[key]
        for device in self.devices.values():
            if device["deviceId"].lower() == value.lower():
                return device
        raise not_found(value)

    # beta /users/{id|upn}/devices and /me/devices

    def _list_user_devices(self, request, caller):
        with self.lock:
            owner = self._owner(request, caller)
            owned = [self.devices[device_id] for device_id in self.user_devices.get(owner["id"], [])]
            return self._collection(request, "user", owned, f"users('{owner['id']}')/devices")

    def _get_user_device(self, request, caller):
        query = self._entity_query(request, "user")
        with self.lock:
            owner = self._owner(request, caller)
            device = self._owned_device(owner, request.params["key"])
            return self._user_device_response(owner, device, query)

    def _patch_user_device(self, request, caller):
        """Merge the given properties (Rome ones included), answer 200 with the device."""
        changes = json_body(request)
        query = self._entity_query(request, "user")
        with self.lock:
            owner = self._owner(request, caller)
            if request.params.get("key") is None:
                device = self._device_named_in_body(owner, changes)
            else:
                device = self._owned_device(owner, request.params["key"])
            apply_changes(device, checked_changes(changes, device, caller, rome=True))
            return self._user_device_response(owner, device, query)

    def _delete_user_device(self, request, caller):
        """DELETE /users/{id|upn}/devices/{id} and /me/devices/{id}: 204, as the beta SDK's user devices
        request builder sends it (msgraph-beta-sdk-python, users/item/devices/item)."""
        with self.lock:
            owner = self._owner(request, caller)
            self._forget(self._owned_device(owner, request.params["key"]))
        return Response(204)

    def _owner(self, request, caller):
        if request.params.get("me"):
            if caller.app:
                raise bad_request(ME_NEEDS_DELEGATED, code="BadRequest")
            owner = self.users.get(caller.user_id)
            if owner is None:
                raise not_found(caller.user_id)
            return owner
        reference = urllib.parse.unquote(request.params["user"])
        owner = self._find_user(reference)
        if owner is None:
            raise not_found(reference)
        return owner

    def _owned_device(self, owner, raw_key):
        key = object_id(urllib.parse.unquote(raw_key))
        if key not in self.user_devices.get(owner["id"], []):
            raise not_found(key)
        return self.devices[key]

    def _device_named_in_body(self, owner, changes):
        """PATCH on the collection (as the draft page writes it): the body's `id` names the device,
        or the user has exactly one."""
        if "id" in changes:
            named = changes.pop("id")
            if not isinstance(named, str):
                raise bad_request("Invalid value specified for property 'id' of resource 'Device'.")
            return self._owned_device(owner, named)
        owned = self.user_devices.get(owner["id"], [])
        if len(owned) != 1:
            raise bad_request(f"The user has {len(owned)} devices: name the one to update with 'id' in the body.")
        return self.devices[owned[0]]

    def _user_device_response(self, owner, device, query):
        return Response(200, {
            "@odata.context": f"{self.url}/beta/$metadata#users('{owner['id']}')/devices{query.context_suffix()}/$entity",
            **query.render(device, self._registered_users),
        })

    # collections and query options

    def _collection(self, request, view, devices, entity_set):
        """One page of a device collection, with @odata.count and @odata.nextLink as Graph sends them."""
        query = self._collection_query(request, view)
        items, next_token, total = query.page(devices)
        version = "beta" if view == "user" else view
        body = {"@odata.context": f"{self.url}/{version}/$metadata#{entity_set}{query.context_suffix()}"}
        if query.count and query.after is None:  # only on the first page
            body["@odata.count"] = total
        if next_token:
            body["@odata.nextLink"] = self._next_link(request, next_token)
        body["value"] = [query.render(device, self._registered_users) for device in items]
        return Response(200, body)

    def _collection_query(self, request, view, counting=False):
        return DeviceQuery.for_collection(request, view, counting=counting,
                                          extension_attributes_by_default=self.extension_attributes_by_default)

    def _entity_query(self, request, view):
        return DeviceQuery.for_entity(request, view,
                                      extension_attributes_by_default=self.extension_attributes_by_default)

    def _next_link(self, request, skiptoken):
        """The same request with $skiptoken replaced, as an absolute URL (ConsistencyLevel is not carried)."""
        query_string = split_target(request.target)[1]
        kept = [part for part in query_string.split("&")
                if part and urllib.parse.unquote_plus(part.split("=", 1)[0]).lower().lstrip("$") != "skiptoken"]
        return f"{self.url}{request.path}?{'&'.join(kept + ['$skiptoken=' + skiptoken])}"

    def _registered_users(self, device_id):
        """$expand=registeredOwners / registeredUsers: the users the device is registered to."""
        return [{"@odata.type": "#microsoft.graph.user", **copy.deepcopy(self.users[user_id])}
                for user_id, owned in self.user_devices.items() if device_id in owned and user_id in self.users]
