# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""What the device inventory plugins share: the source file, the inventory cache, host names, host
variables and the constructed features (compose, groups, keyed_groups).

Each plugin says how to describe its query, how to read devices, and how to name and describe one
device. The cache holds the devices as the API returned them, next to the query that read them: a
changed source file (other filters, another tenant) is a cache miss, and no credential is ever part of
either, so none can reach the cache.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import abc
import json
import os
import re
from collections import Counter

from ansible.errors import AnsibleError, AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import FleetguardError
from ansible_collections.fleetguard.devices.plugins.module_utils.transport import HAS_REQUESTS

# Host patterns (--limit, `hosts:`) give meaning to , : ! & * [ ] ~ @ and spaces: keep only what has none.
UNSAFE_HOST_NAME_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]+")


def safe_host_name(value):
    """`value` with every run of characters other than letters, digits, '.', '_' and '-' made one '_'."""
    return UNSAFE_HOST_NAME_CHARACTERS.sub("_", "" if value is None else str(value)).strip("_")


def unique_host_names(devices, name_of, id_of):
    """([(host name, device)], [warning]): one host per device, unique by construction.

    Each name is made safe, a missing one is the id. A name several devices want goes to none of them:
    each gets `name_id`. A fallback that is taken too (a device may be named exactly like another's
    fallback) gets a counter as well, so no device hides another whatever order they come in; each
    fallback is named in a warning.
    """
    wanted = [safe_host_name(name_of(device)) or safe_host_name(id_of(device)) for device in devices]
    shared = Counter(wanted)
    taken = set(name for name in wanted if shared[name] == 1)
    names = dict((index, name) for index, name in enumerate(wanted) if shared[name] == 1)
    warnings = []
    # Settled in id order, so the same devices always get the same names.
    for index in sorted((i for i, name in enumerate(wanted) if shared[name] > 1),
                        key=lambda i: str(id_of(devices[i]))):
        base = "%s_%s" % (wanted[index], safe_host_name(id_of(devices[index])))
        name, counter = base, 1
        while name in taken:
            counter += 1
            name = "%s_%d" % (base, counter)
        taken.add(name)
        names[index] = name
        warnings.append("%d devices are named %s: device %s is host %s"
                        % (shared[wanted[index]], wanted[index], id_of(devices[index]), name))
    return [(names[index], device) for index, device in enumerate(devices)], warnings


class DeviceInventory(BaseInventoryPlugin, Constructable, Cacheable):
    """Base of the device inventory plugins: subclasses set the constants and implement query(), fetch()
    and host_vars()."""

    NAME = None
    # Source files are named SOURCE_NAME.yml or *.SOURCE_NAME.yml (or .yaml).
    SOURCE_NAME = None
    # Every host joins this group.
    DEVICES_GROUP = None
    # The field that identifies a device: the host name when the `hostname` field is empty or shared.
    ID_FIELD = None

    @abc.abstractmethod
    def query(self):
        """What to read, from the options, checked before any request: JSON data without credentials."""

    @abc.abstractmethod
    def fetch(self, query):
        """The devices `query` names, read from the API: a list of dicts."""

    @abc.abstractmethod
    def host_vars(self, device):
        """The host vars of one device."""

    def verify_file(self, path):
        if not super(DeviceInventory, self).verify_file(path):
            return False
        file_name = os.path.basename(path)
        accepted = ["%s.%s" % (self.SOURCE_NAME, ext) for ext in ("yml", "yaml")]
        return any(file_name == name or file_name.endswith("." + name) for name in accepted)

    def parse(self, inventory, loader, path, cache=True):
        super(DeviceInventory, self).parse(inventory, loader, path, cache)
        self._read_config_data(path)
        if not HAS_REQUESTS:
            raise AnsibleError("%s needs the Python library requests on the controller" % self.NAME)
        try:
            # Plain JSON data: no template-trust or origin tags from the source file go into the cache.
            query = json.loads(json.dumps(self.query()))
            devices = self._devices(path, query, cache)
        except FleetguardError as exc:
            # The message names the request, the API's answer and its request id; never a credential.
            raise AnsibleParserError("%s: %s" % (self.NAME, exc))
        self._populate(devices)

    def connection_params(self, table):
        """The options of a connection table, as the clients' from_params() take them. An empty value (AWX
        injects an optional field left empty as an empty variable) means "not set", as for the modules."""
        params = {}
        for name, option in table.items():
            value = self.get_option(name)
            params[name] = option.get("default") if value == "" else value
        return params

    def _devices(self, path, query, cache):
        """The devices of `query`: from the inventory cache when it is on, allowed (no --flush-cache or
        refresh_inventory) and holds this very query; else from the API, refreshing the cache."""
        if not self.get_option("cache"):
            return self.fetch(query)
        key = self.get_cache_key(path)
        if cache:
            try:
                entry = self._cache[key]
            except KeyError:
                entry = None
            if isinstance(entry, dict) and entry.get("query") == query:
                self.display.vvv("%s: %d devices from the inventory cache" % (self.NAME, len(entry["devices"])))
                return entry["devices"]
        devices = self.fetch(query)
        self._cache[key] = dict(query=query, devices=devices)
        return devices

    def _populate(self, devices):
        strict = self.get_option("strict")
        self.inventory.add_group(self.DEVICES_GROUP)
        hostname_field = self.get_option("hostname")
        named, warnings = unique_host_names(devices, lambda device: device.get(hostname_field),
                                            lambda device: device.get(self.ID_FIELD))
        for warning in warnings:
            self.display.warning("%s: %s" % (self.NAME, warning))
        # Sorted by name: hosts run in that order, and --graph and --list read like a directory listing.
        for host_name, device in sorted(named, key=lambda pair: pair[0]):
            host_vars = self.host_vars(device)
            self.inventory.add_host(host_name, group=self.DEVICES_GROUP)
            for name, value in host_vars.items():
                self.inventory.set_variable(host_name, name, value)
            self._set_composite_vars(self.get_option("compose"), host_vars, host_name, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), host_vars, host_name, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), host_vars, host_name, strict=strict)
        self.display.vvv("%s: %d hosts" % (self.NAME, len(devices)))
