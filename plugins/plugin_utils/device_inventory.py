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

from ansible import constants
from ansible.errors import AnsibleError, AnsibleParserError
from ansible.inventory.data import InventoryData
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import FleetguardError
from ansible_collections.fleetguard.devices.plugins.module_utils.transport import HAS_REQUESTS

# Host patterns (--limit, `hosts:`) give meaning to , : ! & * ? [ ] ~ @ and spaces: keep only what has none.
UNSAFE_HOST_NAME_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]+")
SAFE_HOST_NAME = re.compile(r"[A-Za-z0-9._-]+\Z")

# Names ansible-core gives a meaning of its own: its implicit groups, and the implicit localhost
# (constants.LOCALHOST: localhost, 127.0.0.1, ::1), which a host of that name would replace.
RESERVED_HOST_NAMES = frozenset(("all", "ungrouped") + tuple(constants.LOCALHOST))

# The group each device inventory plugin puts every host in (its DEVICES_GROUP), and the host var holding the
# device's id there. Both are reserved in every source, whichever sources an inventory has: the playbooks
# target them (feishu_devices:msgraph_devices). A host in one of them is a device host: one these plugins made.
DEVICE_GROUPS = {"feishu_devices": "feishu_device_record_id", "msgraph_devices": "msgraph_id"}

# Rounds of naming the hosts, constructing their groups and naming again the hosts that a group took the name of.
# One is the rule, two when a device is named like a group that keyed_groups makes; a keyed group named after
# each host (key: inventory_hostname, no prefix) never settles.
NAMING_ROUNDS = 4


def safe_host_name(value):
    """`value` with every run of characters other than letters, digits, '.', '_' and '-' made one '_'."""
    return UNSAFE_HOST_NAME_CHARACTERS.sub("_", "" if value is None else str(value)).strip("_")


def host_name_problem(name, group_names=()):
    """Why `name` may not name a device host, or None when it may.

    THE naming rule of the device inventory plugins. A host name must be what a host pattern reads as that one
    host, and nothing else: not empty; only letters, digits, '.', '_' and '-' (no separator, no !/&/~/@ prefix,
    no glob, no [range]); not a name ansible-core reserves; not the name of a group (`group_names`), which
    set_variable() and host patterns would take for the group. ansible-core compares host and group names
    case-sensitively (dict keys, and fnmatch.translate() patterns without IGNORECASE), so `ALL` is no group's name.
    """
    if not name:
        return "an empty name"
    if not SAFE_HOST_NAME.match(name):
        return "a name host patterns read specially"
    if name in RESERVED_HOST_NAMES:
        return "a name ansible-core reserves"
    if name in group_names:
        return "the name of a group"
    return None


def unique_host_names(devices, name_of, id_of, group_names=()):
    """([(host name, device)], [warning]): one host per device, unique by construction, each name allowed by
    host_name_problem() against `group_names`.

    Each name is made safe, a missing one is the id. A device whose name it may not have gets its fallback,
    `name_id` with its own id: a name several devices want, a name host_name_problem() refuses, and a name that is
    another device's fallback. A fallback belongs to its device, whether that device needs it or not: it is the
    host the admin writes host_vars for, and a device named like it later must not take them over. A fallback that
    is refused or is another's too gets a counter, one that is no device's fallback, so no device hides another
    whatever order they come in; each fallback is named in a warning.
    """
    wanted = [safe_host_name(name_of(device)) or safe_host_name(id_of(device)) for device in devices]
    fallbacks = ["_".join(part for part in (name, safe_host_name(id_of(device))) if part) or "device"
                 for name, device in zip(wanted, devices)]
    owners = {}
    for index, fallback in enumerate(fallbacks):
        owners.setdefault(fallback, []).append(index)
    shared = Counter(wanted)
    problems = []
    for index, name in enumerate(wanted):
        problem = host_name_problem(name, group_names)
        # A device whose name is its own fallback (its id made nothing safe) keeps it.
        others = [other for other in owners.get(name, ()) if other != index]
        if problem is None and others:
            problem = "the fallback name of device %s" % ", ".join(sorted(str(id_of(devices[i])) for i in others))
        problems.append(problem)
    kept = [shared[name] == 1 and problem is None for name, problem in zip(wanted, problems)]
    # No kept name is another's fallback, so each fallback is taken, if at all, only by another fallback.
    taken = set(name for name, keep in zip(wanted, kept) if keep)
    names = dict((index, name) for index, name in enumerate(wanted) if kept[index])
    warnings = []
    # Settled in id order, so the same devices always get the same names.
    for index in sorted((i for i, keep in enumerate(kept) if not keep),
                        key=lambda i: (str(id_of(devices[i])), wanted[i])):
        device_id = id_of(devices[index])
        base = fallbacks[index]
        name, counter = base, 1
        while name in taken or host_name_problem(name, group_names) or (counter > 1 and name in owners):
            counter += 1
            name = "%s_%d" % (base, counter)
        taken.add(name)
        names[index] = name
        if problems[index]:
            warnings.append("device %s is named %s, %s: it is host %s" % (device_id, wanted[index], problems[index], name))
        else:
            warnings.append("%d devices are named %s: device %s is host %s"
                            % (shared[wanted[index]], wanted[index], device_id, name))
    return [(names[index], device) for index, device in enumerate(devices)], warnings


class _RecordedInventory(InventoryData):
    """Inventory data that records the calls changing it, to make them again on another (replay()).

    The hosts of a source are built here first, compose, groups and keyed_groups included, because a group that
    keyed_groups makes is known only once its hosts have their variables: a device named like one must then be
    named again before the real inventory holds either. Only what the source does is recorded: what is copied in
    from the real inventory (seed_*), and what add_host() does by itself (inventory_file, inventory_dir), is not.
    """

    def __init__(self, current_source):
        self.calls = None
        super(_RecordedInventory, self).__init__()
        self.current_source = current_source
        # Every group the recorded calls named (made or not): the groups of the source.
        self.group_names = set()

    def start(self):
        self.calls = []

    def _call(self, method, *args):
        calls, self.calls = self.calls, None
        try:
            result = getattr(super(_RecordedInventory, self), method)(*args)
        finally:
            self.calls = calls
        if calls is not None:
            calls.append((method, args))
        return result

    def add_group(self, group):
        name = self._call("add_group", group)
        if self.calls is not None:
            self.group_names.add(name)
        return name

    def add_host(self, host, group=None, port=None):
        return self._call("add_host", host, group, port)

    def add_child(self, group, child):
        return self._call("add_child", group, child)

    def set_variable(self, entity, varname, value):
        return self._call("set_variable", entity, varname, value)

    def seed_groups(self, inventory):
        """The groups of `inventory`, with their children, as they are before the source."""
        for name in inventory.groups:
            self.add_group(name)
        for name, group in inventory.groups.items():
            for child in group.child_groups:
                self.add_child(name, child.name)

    def seed_host(self, host):
        """A host of the real inventory under the same name: its variables and groups, as the source finds them."""
        self.add_host(host.name)
        self.hosts[host.name].vars = dict(host.vars)
        for group in host.get_groups():
            self.add_child(group.name, host.name)

    def replay(self, inventory):
        for method, args in self.calls:
            getattr(inventory, method)(*args)


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

    def _configured_group_names(self):
        """The groups the source's options name whether or not a host joins them: those of `groups`, and the
        parents of `keyed_groups` given as plain names. A host named like one would be what a play on the group
        runs on while the group is empty."""
        names = set(self._sanitize_group_name(name) for name in (self.get_option("groups") or {}))
        for keyed in self.get_option("keyed_groups") or []:
            parent = keyed.get("parent_group") if isinstance(keyed, dict) else None
            if isinstance(parent, str) and parent and "{" not in parent:
                names.add(self._sanitize_group_name(parent))
        return names

    def _construct(self, named, host_vars):
        """The source's hosts, groups and variables, recorded: hosts named as in `named`, each starting from the host
        of the real inventory that has its name, if any (a device of another source with the same name)."""
        recorded = _RecordedInventory(self.inventory.current_source)
        recorded.seed_groups(self.inventory)
        for host_name, dummy in named:
            if host_name in self.inventory.hosts:
                recorded.seed_host(self.inventory.hosts[host_name])
        recorded.start()
        strict = self.get_option("strict")
        inventory, self.inventory = self.inventory, recorded
        try:
            self.inventory.add_group(self.DEVICES_GROUP)
            # Sorted by name: hosts run in that order, and --graph and --list read like a directory listing.
            for (host_name, dummy), variables in sorted(zip(named, host_vars), key=lambda pair: pair[0][0]):
                self.inventory.add_host(host_name, group=self.DEVICES_GROUP)
                for name, value in variables.items():
                    self.inventory.set_variable(host_name, name, value)
                self._set_composite_vars(self.get_option("compose"), variables, host_name, strict=strict)
                self._add_host_to_composed_groups(self.get_option("groups"), variables, host_name, strict=strict)
                self._add_host_to_keyed_groups(self.get_option("keyed_groups"), variables, host_name, strict=strict)
        finally:
            self.inventory = inventory
        return recorded

    def _yield_to_groups(self, group_names, source_groups, keep):
        """Rename the device hosts of earlier sources that are named like a group (`group_names`, those of the
        inventory and this source's), as unique_host_names() would have: the group is the user's configuration, the
        host name an end user's. A host that these plugins did not make is the user's own: it is only warned about,
        when this source makes the group (`source_groups`). `keep`: names the new ones must not take."""
        inventory = self.inventory
        for name in sorted(set(inventory.hosts) & group_names):
            host = inventory.hosts[name]
            groups = [group.name for group in host.get_groups()]
            ids = [str(host.vars[DEVICE_GROUPS[group]]) for group in sorted(DEVICE_GROUPS)
                   if group in groups and host.vars.get(DEVICE_GROUPS[group]) not in (None, "")]
            if not ids:
                if name in source_groups:
                    self.display.warning("%s: host %s, not a device host of these inventory plugins, is named like a"
                                         " group of this source: host patterns naming %s select the host, not the group"
                                         % (self.NAME, name, name))
                continue
            base = "_".join(part for part in (name, safe_host_name(ids[0])) if part)
            new_name, counter = base, 1
            while new_name in inventory.hosts or new_name in keep or host_name_problem(new_name, group_names):
                counter += 1
                new_name = "%s_%d" % (base, counter)
            # Its own groups only: its place under their parents follows.
            member_of = [group.name for group in host.get_groups() if host in group.hosts and group.name != "all"]
            host_vars = dict(host.vars)
            inventory.remove_host(host)
            inventory.add_host(new_name)
            inventory.get_host(new_name).vars = host_vars
            for group in member_of:
                inventory.add_child(group, new_name)
            self.display.warning("%s: device %s is named %s, the name of a group: it is host %s"
                                 % (self.NAME, ", ".join(ids), name, new_name))

    def _populate(self, devices):
        hostname_field = self.get_option("hostname")
        host_vars = [self.host_vars(device) for device in devices]
        # The groups of the inventory, of earlier sources too, and those this source's options name.
        group_names = set(self.inventory.groups) | set(DEVICE_GROUPS) | self._configured_group_names()
        for dummy in range(NAMING_ROUNDS):
            named, warnings = unique_host_names(devices, lambda device: device.get(hostname_field),
                                                lambda device: device.get(self.ID_FIELD), group_names)
            recorded = self._construct(named, host_vars)
            clashes = set(host_name for host_name, dummy in named) & recorded.group_names
            if not clashes:
                break
            # A device is named like a group that keyed_groups (or a parent_group template) makes: name it again.
            group_names |= recorded.group_names
        else:
            raise AnsibleParserError("%s: hosts keep being named like the groups that keyed_groups makes of them (%s):"
                                     " a keyed group named after each host needs a prefix"
                                     % (self.NAME, ", ".join(sorted(clashes)[:10])))
        for warning in warnings:
            self.display.warning("%s: %s" % (self.NAME, warning))
        host_names = set(host_name for host_name, dummy in named)
        source_groups = recorded.group_names | set(DEVICE_GROUPS) | self._configured_group_names()
        self._yield_to_groups(group_names | recorded.group_names, source_groups, host_names)
        recorded.replay(self.inventory)
        # The rule above makes this impossible; a device host that a group shadows must never reach a play.
        shadowed = [name for name in host_names if name in self.inventory.groups]
        if shadowed:
            raise AnsibleParserError("%s: hosts named like groups: %s" % (self.NAME, ", ".join(sorted(shadowed))))
        self.display.vvv("%s: %d hosts" % (self.NAME, len(devices)))
