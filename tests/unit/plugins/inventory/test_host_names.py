"""The naming rule of the device inventory plugins: a host name is what a host pattern reads as that one host.

A device name is chosen by an end user. Before the rule, a Graph device named `all` was added with
set_variable('all', ...), which ansible-core applies to the *group* all (every host inherited its msgraph_id), and
a host named like a group took the group's place in host patterns (--limit, `hosts:`).
"""

import json
import os
import random

import pytest

from ansible.errors import AnsibleParserError
from ansible.inventory.data import InventoryData
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import inventory_loader
from ansible.utils.display import Display

from ansible_collections.fleetguard.devices.plugins.plugin_utils.device_inventory import (
    DEVICE_GROUPS, RESERVED_HOST_NAMES, host_name_problem, unique_host_names)

# Groups of the inventory in the table below: the plugins' own, a keyed group, a composed group.
GROUPS = frozenset(["all", "ungrouped", "feishu_devices", "msgraph_devices", "msgraph_os_windows", "stale"])

# (device name, the host it must be). `ID` is the device's id.
HOSTILE_NAMES = [
    # ansible-core's own names: its implicit groups and the implicit localhost.
    ("all", "all_ID"),
    ("ungrouped", "ungrouped_ID"),
    ("localhost", "localhost_ID"),
    ("127.0.0.1", "127.0.0.1_ID"),
    ("::1", "1"),
    # Group names: the plugins' own groups, a keyed group, a composed group.
    ("feishu_devices", "feishu_devices_ID"),
    ("msgraph_devices", "msgraph_devices_ID"),
    ("msgraph_os_windows", "msgraph_os_windows_ID"),
    ("stale", "stale_ID"),
    # What a host pattern reads specially: made safe (and then checked like any name).
    ("~.*", "."),
    ("~msgraph_devices", "msgraph_devices_ID"),
    ("!all", "all_ID"),
    ("&msgraph_devices", "msgraph_devices_ID"),
    ("@limit.txt", "limit.txt"),
    ("all[0]", "all_0"),
    ("msgraph_devices[0:1]", "msgraph_devices_0_1"),
    ("msgraph_devices[-1]", "msgraph_devices_-1"),
    ("msgraph_*", "msgraph"),
    ("msgraph_devices?", "msgraph_devices_ID"),
    ("all,localhost", "all_localhost"),
    ("all:msgraph_devices", "all_msgraph_devices"),
    ("all msgraph_devices", "all_msgraph_devices"),
    ("fe80::1", "fe80_1"),
    ("stale ", "stale_ID"),
    ("  ", "ID"),
    ("", "ID"),
    (None, "ID"),
    # ansible-core compares host and group names case-sensitively: these are no group's name (see below).
    ("ALL", "ALL"),
    ("All", "All"),
    ("MSGRAPH_DEVICES", "MSGRAPH_DEVICES"),
    ("Localhost", "Localhost"),
    ("Stale", "Stale"),
]


def manager_with(groups, hosts):
    """An InventoryManager holding `groups` (each with one host, member_of_<group>) and `hosts` (ungrouped)."""
    manager = InventoryManager(DataLoader(), sources=[], parse=False)
    for group in groups:
        manager.add_group(group)
        manager.add_host("member_of_%s" % group, group=group)
    for host in hosts:
        manager.add_host(host)
    manager.reconcile_inventory()
    return manager


@pytest.mark.parametrize("device_name, host", HOSTILE_NAMES)
def test_a_hostile_device_name_becomes_a_host_that_host_patterns_read_as_itself(device_name, host):
    named, warnings = unique_host_names([dict(id="ID", name=device_name)], lambda d: d["name"], lambda d: d["id"],
                                        GROUPS)
    assert named[0][0] == host
    assert host_name_problem(host, GROUPS) is None
    # A refused name is renamed name_ID and named in a warning; a device without a usable name is its id, as always.
    assert bool(warnings) is host.endswith("_ID")
    if warnings:
        assert "device ID is named" in warnings[0] and warnings[0].endswith("it is host %s" % host)

    # Read by ansible-core: as a --limit, as a play's pattern, and as set_variable's target.
    manager = manager_with(GROUPS - {"all", "ungrouped"}, [host])
    assert [h.name for h in manager.get_hosts(host)] == [host]
    manager.subset(host)
    assert [h.name for h in manager.get_hosts("all")] == [host]
    manager.subset(None)
    for group in GROUPS - {"all", "ungrouped"}:
        assert [h.name for h in manager.get_hosts(group)] == ["member_of_%s" % group]
    assert len(manager.get_hosts("all")) == len(GROUPS) - 2 + 1
    assert manager.get_host("localhost").name == "localhost" and "localhost" not in manager._inventory.hosts
    data = manager._inventory
    data.set_variable(host, "msgraph_id", "ID")
    assert data.hosts[host].vars["msgraph_id"] == "ID"
    assert not [group for group in data.groups.values() if group.vars]


@pytest.mark.parametrize("name", sorted(RESERVED_HOST_NAMES))
def test_ansible_cores_names_are_refused_whatever_groups_are_given(name):
    assert host_name_problem(name) in ("a name ansible-core reserves", "a name host patterns read specially")
    named, dummy = unique_host_names([dict(id="7", name=name)], lambda d: d["name"], lambda d: d["id"])
    assert named[0][0] != name and host_name_problem(named[0][0]) is None


def test_ansible_core_compares_host_and_group_names_case_sensitively():
    """What lets the rule leave ALL, Localhost, MSGRAPH_DEVICES alone: if ansible-core ever folds case, this fails
    and host_name_problem() must refuse case variants too."""
    manager = manager_with(["msgraph_devices"], ["ALL", "MSGRAPH_DEVICES", "Localhost", "Ungrouped"])
    assert [h.name for h in manager.get_hosts("msgraph_devices")] == ["member_of_msgraph_devices"]
    assert [h.name for h in manager.get_hosts("MSGRAPH_DEVICES")] == ["MSGRAPH_DEVICES"]
    assert [h.name for h in manager.get_hosts("ALL")] == ["ALL"]
    assert len(manager.get_hosts("all")) == 5
    manager.subset("member_of_msgraph_devices")
    assert [h.name for h in manager.get_hosts("all")] == ["member_of_msgraph_devices"]
    manager.subset(None)
    # The implicit localhost stays implicit.
    assert manager._inventory.localhost is None
    assert manager.get_host("localhost") is not manager.get_host("Localhost")
    data = manager._inventory
    data.set_variable("MSGRAPH_DEVICES", "msgraph_id", "1")
    assert data.hosts["MSGRAPH_DEVICES"].vars["msgraph_id"] == "1" and not data.groups["msgraph_devices"].vars


def test_fallback_names_are_checked_too_and_shared_reserved_names_stay_apart():
    devices = [dict(id="x", name="all"), dict(id="y", name="all"), dict(id="z", name="all_x")]
    # all_x is a group as well: the device named all_x yields, and so does the fallback of the device x.
    named, warnings = unique_host_names(devices, lambda d: d["name"], lambda d: d["id"], {"all", "all_x"})
    by_id = dict((device["id"], name) for name, device in named)
    assert by_id == {"x": "all_x_2", "y": "all_y", "z": "all_x_z"}
    assert len(warnings) == 3 and all(host_name_problem(name, {"all", "all_x"}) is None for name in by_id.values())


ALL_DEVICE = "0f4a1dde-400d-4a36-8cfe-f728c8334634"
NEWCOMER = "fd99155d-7c1e-4b7a-9a51-2d0e6c3f8b17"


@pytest.mark.parametrize("reverse", [False, True], ids=["api-order", "reversed"])
def test_a_device_named_like_another_devices_fallback_yields_it(reverse):
    """The fallback all_<id> is the host the admin writes host_vars for: a device named so later must not take it."""
    devices = [dict(id=ALL_DEVICE, name="all"), dict(id=NEWCOMER, name="all_" + ALL_DEVICE)]
    named, warnings = unique_host_names(devices[::-1] if reverse else devices, lambda d: d["name"],
                                        lambda d: d["id"], GROUPS)
    by_id = dict((device["id"], name) for name, device in named)
    assert by_id == {ALL_DEVICE: "all_" + ALL_DEVICE, NEWCOMER: "all_%s_%s" % (ALL_DEVICE, NEWCOMER)}
    assert len(warnings) == 2
    assert [w for w in warnings if w.startswith("device %s is named all_%s," % (NEWCOMER, ALL_DEVICE))] == [
        "device %s is named all_%s, the fallback name of device %s: it is host all_%s_%s"
        % (NEWCOMER, ALL_DEVICE, ALL_DEVICE, ALL_DEVICE, NEWCOMER)]


# (id, device name): names that need a fallback, names that are another device's fallback (and one that is the
# fallback of a device that itself yields, one that is the fallback of a device keeping its name), a name in the
# form of the device's own fallback, a device without a name.
FALLBACK_FLEET = [
    (ALL_DEVICE, "all"),
    (NEWCOMER, "all_" + ALL_DEVICE),
    ("c3", "all_%s_%s" % (ALL_DEVICE, NEWCOMER)),
    ("d4", "laptop"),
    ("e5", "laptop"),
    ("f6", "laptop_d4"),
    ("g7", "laptop_e5"),
    ("h8", "stale"),
    ("i9", "stale_h8"),
    ("j10", "kiosk_j10"),
    ("k11", None),
    ("l12", "printer"),
    ("m13", "printer_l12"),
]
KEEPS_ITS_NAME = {"j10": "kiosk_j10", "k11": "k11", "l12": "printer"}


@pytest.mark.parametrize("seed", range(6))
def test_a_device_needing_a_fallback_gets_its_own_whatever_the_order(seed):
    fleet = [dict(id=device_id, name=name) for device_id, name in FALLBACK_FLEET]
    expected, dummy = unique_host_names(fleet, lambda d: d["name"], lambda d: d["id"], GROUPS)
    expected = dict((device["id"], name) for name, device in expected)
    order = list(fleet)
    random.Random(seed).shuffle(order)
    named, warnings = unique_host_names(order, lambda d: d["name"], lambda d: d["id"], GROUPS)
    by_id = dict((device["id"], name) for name, device in named)

    assert by_id == expected
    assert len(set(by_id.values())) == len(fleet)
    assert all(host_name_problem(name, GROUPS) is None for name in by_id.values())
    for device_id, name in FALLBACK_FLEET:
        if device_id in KEEPS_ITS_NAME:
            assert by_id[device_id] == KEEPS_ITS_NAME[device_id]
        else:
            assert by_id[device_id] == "%s_%s" % (name, device_id)
            assert [w for w in warnings if "device %s " % device_id in w][0].endswith("is host %s" % by_id[device_id])
    assert len(warnings) == len(FALLBACK_FLEET) - len(KEEPS_ITS_NAME)


def test_a_fallback_taken_by_a_group_leaves_the_counter_names_to_their_owners():
    """The counter is the last resort: it never hands out another device's fallback (all_x_2 is the device x_2's)."""
    devices = [dict(id="x", name="all"), dict(id="x_2", name="all")]
    for order in (devices, devices[::-1]):
        named, dummy = unique_host_names(order, lambda d: d["name"], lambda d: d["id"], {"all", "all_x"})
        by_id = dict((device["id"], name) for name, device in named)
        assert by_id == {"x": "all_x_3", "x_2": "all_x_2"}


def test_the_plugins_groups_and_id_vars_are_the_ones_the_rule_reserves(feishu_sandbox):
    from ansible_collections.fleetguard.devices.plugins.inventory.feishu_device_records import record_host_vars
    from ansible_collections.fleetguard.devices.plugins.inventory.msgraph_devices import device_host_vars

    host_vars = {"fleetguard.devices.feishu_device_records": record_host_vars(dict(device_record_id="7")),
                 "fleetguard.devices.msgraph_devices": device_host_vars(dict(id="7"))}
    groups = []
    for plugin_name, variables in host_vars.items():
        plugin = inventory_loader.get(plugin_name)
        groups.append(plugin.DEVICES_GROUP)
        assert variables[DEVICE_GROUPS[plugin.DEVICES_GROUP]] == "7"
    assert sorted(groups) == sorted(DEVICE_GROUPS)


@pytest.fixture
def warnings(monkeypatch):
    """The warnings shown during the test, each on one line."""
    shown = []
    monkeypatch.setattr(Display, "warning", lambda self, msg, *args, **kwargs: shown.append(" ".join(msg.split())))
    return shown


GRAPH_GROUPS = dict(
    keyed_groups=[dict(key="msgraph_operating_system | lower", prefix="msgraph_os")],
    groups=dict(stale="msgraph_approximate_last_sign_in_date_time is none", disabled="not msgraph_account_enabled"),
    compose=dict(ansible_connection="'local'"),
)
GROUP_LIKE_NAMES = ("all", "ungrouped", "localhost", "msgraph_devices", "feishu_devices", "msgraph_os_windows",
                    "stale", "disabled")


def no_group_has_vars(inventory):
    return not [name for name, group in inventory.groups.items() if group.vars]


def test_graph_devices_named_like_groups_are_hosts_of_their_own(graph_sandbox, graph_source, warnings):
    with graph_sandbox.lock:
        for device in graph_sandbox.devices.values():
            device["accountEnabled"] = True  # no host is disabled: the group `disabled` is never made
    devices = dict((name, graph_sandbox.add_device(displayName=name, operatingSystem="Windows", accountEnabled=True,
                                                   approximateLastSignInDateTime="2026-01-02T03:04:05Z")["id"])
                   for name in GROUP_LIKE_NAMES)
    parsed = graph_source(GRAPH_GROUPS)
    inventory = parsed.inventory
    assert no_group_has_vars(inventory)
    assert "disabled" not in inventory.groups
    for name, object_id in devices.items():
        host = "%s_%s" % (name, object_id)
        assert name not in inventory.hosts
        assert parsed.vars(host)["msgraph_id"] == object_id
        assert "fleetguard.devices.msgraph_devices: device %s is named %s" % (object_id, name) in " ".join(warnings)
        assert host in parsed.group("msgraph_devices") and host in parsed.group("msgraph_os_windows")
    assert inventory.localhost is None
    assert sorted(parsed.vars(host)["msgraph_id"] for host in parsed.group("msgraph_devices")) \
        == sorted(graph_sandbox.devices)
    windows = [oid for oid, d in graph_sandbox.devices.items() if d["operatingSystem"] == "Windows"]
    assert sorted(parsed.vars(host)["msgraph_id"] for host in parsed.group("msgraph_os_windows")) == sorted(windows)
    assert not set(inventory.hosts) & set(inventory.groups)


def test_feishu_records_named_like_groups_are_hosts_of_their_own(feishu_sandbox, feishu_source, warnings):
    records = dict((name, feishu_sandbox.add_record(device_name=name, device_system=1, device_status=2,
                                                    serial_number="C02-%s" % name)["device_record_id"])
                   for name in ("all", "feishu_devices", "msgraph_devices", "feishu_status_untrusted", "company"))
    parsed = feishu_source(dict(keyed_groups=[dict(key="feishu_device_status", prefix="feishu_status")],
                                groups=dict(company="feishu_device_ownership == 'company'")))
    assert no_group_has_vars(parsed.inventory)
    for name, record_id in records.items():
        host = "%s_%s" % (name, record_id)
        assert name not in parsed.inventory.hosts
        assert parsed.vars(host)["feishu_device_record_id"] == record_id
        assert host in parsed.group("feishu_status_untrusted")
    assert sorted(parsed.vars(host)["feishu_device_record_id"] for host in parsed.group("feishu_devices")) \
        == sorted(feishu_sandbox.records)
    assert len(warnings) == len(records)


def test_a_host_of_an_earlier_source_yields_to_a_group_a_later_source_makes(feishu_sandbox, feishu_source,
                                                                            graph_sandbox, graph_source, warnings):
    record = feishu_sandbox.add_record(device_name="msgraph_os_windows", device_system=1, serial_number="C02-YIELD")
    inventory = InventoryData()
    feishu_source(dict(keyed_groups=[dict(key="feishu_device_system", prefix="feishu_os")]), inventory=inventory)
    assert "msgraph_os_windows" in inventory.hosts and not warnings  # no such group yet
    parsed = graph_source(GRAPH_GROUPS, inventory=inventory)

    host = "msgraph_os_windows_%s" % record["device_record_id"]
    assert "msgraph_os_windows" not in inventory.hosts and no_group_has_vars(inventory)
    assert parsed.vars(host)["feishu_device_record_id"] == record["device_record_id"]
    assert parsed.vars(host)["inventory_file"].endswith("devices.feishu_device_records.yml")
    assert host in parsed.group("feishu_devices") and host in parsed.group("feishu_os_windows")
    assert host not in parsed.group("msgraph_os_windows")
    windows = [oid for oid, d in graph_sandbox.devices.items() if d["operatingSystem"] == "Windows"]
    assert sorted(parsed.vars(h)["msgraph_id"] for h in parsed.group("msgraph_os_windows")) == sorted(windows)
    assert warnings == ["fleetguard.devices.msgraph_devices: device %s is named msgraph_os_windows, the name of a "
                        "group: it is host %s" % (record["device_record_id"], host)]


def test_a_host_of_another_source_that_is_no_device_is_left_alone_and_named_in_a_warning(graph_source, warnings):
    inventory = InventoryData()
    inventory.add_host("msgraph_devices")
    inventory.set_variable("msgraph_devices", "mine", True)
    parsed = graph_source(inventory=inventory)
    assert parsed.vars("msgraph_devices")["mine"] is True and no_group_has_vars(inventory)
    assert len(warnings) == 1 and "host msgraph_devices, not a device host" in warnings[0]


def test_a_device_of_both_directories_under_one_name_is_still_one_host_seen_whole_by_the_later_source(
        feishu_sandbox, feishu_source, graph_sandbox, graph_source, warnings):
    record = feishu_sandbox.add_record(device_name="FG-BOTH-0001", device_system=1, device_status=2,
                                       serial_number="C02-BOTH")
    device = graph_sandbox.add_device(displayName="FG-BOTH-0001", operatingSystem="Windows")
    inventory = InventoryData()
    feishu_source(dict(keyed_groups=[dict(key="feishu_device_status", prefix="feishu_status")]), inventory=inventory)
    # The Graph source's groups read the Feishu variables (and groups) of a host both sources have.
    parsed = graph_source(dict(groups=dict(untrusted_too="feishu_device_status | default('') == 'untrusted'"),
                               keyed_groups=[dict(key="group_names | select('match', 'feishu_status') | list",
                                                  prefix="also")]),
                          inventory=inventory)
    host_vars = parsed.vars("FG-BOTH-0001")
    assert host_vars["feishu_device_record_id"] == record["device_record_id"] and host_vars["msgraph_id"] == device["id"]
    assert parsed.group("untrusted_too") == ["FG-BOTH-0001"]
    assert parsed.group("also_feishu_status_untrusted") == ["FG-BOTH-0001"]
    assert host_vars["inventory_file"].endswith("devices.feishu_device_records.yml")
    assert warnings == []


def test_a_device_named_like_the_keyed_group_it_makes_is_named_again(graph_sandbox, graph_source, warnings):
    device = graph_sandbox.add_device(displayName="msgraph_os_plan9", operatingSystem="Plan9")
    parsed = graph_source(dict(keyed_groups=[dict(key="msgraph_operating_system | lower", prefix="msgraph_os",
                                                  parent_group="by_os")]))
    host = "msgraph_os_plan9_%s" % device["id"]
    assert parsed.group("msgraph_os_plan9") == [host]
    assert parsed.vars(host)["msgraph_id"] == device["id"] and no_group_has_vars(parsed.inventory)
    assert "msgraph_os_plan9" in [child.name for child in parsed.inventory.groups["by_os"].child_groups]
    assert warnings == ["fleetguard.devices.msgraph_devices: device %s is named msgraph_os_plan9, the name of a group:"
                        " it is host %s" % (device["id"], host)]


def test_a_keyed_group_named_after_each_host_fails_the_source(feishu_sandbox, feishu_source):
    # A name whose fallbacks (name_id, name_id_2, ...) are valid group names as they are: each becomes a group again.
    feishu_sandbox.add_record(device_name="plainname", device_system=1, serial_number="C02-PLAIN")
    with pytest.raises(AnsibleParserError) as caught:
        feishu_source(dict(keyed_groups=[dict(key="inventory_hostname", prefix="")], leading_separator=False))
    assert "keyed group named after each host" in str(caught.value) and "plainname_" in str(caught.value)


@pytest.mark.parametrize("plugin", ["feishu", "graph"])
def test_a_cache_written_before_the_rule_does_not_bring_a_group_name_back(plugin, request, jsonfile_cache, warnings):
    """The inventory cache holds the devices as the API sent them, never host names: a cache written by an earlier
    release that holds a device named `all` is named by the rule like a device just read."""
    sandbox = request.getfixturevalue("%s_sandbox" % ("feishu" if plugin == "feishu" else "graph"))
    source = request.getfixturevalue("%s_source" % plugin)
    name_field, id_field = ("device_name", "device_record_id") if plugin == "feishu" else ("displayName", "id")
    source(jsonfile_cache)
    cache_dir = jsonfile_cache["cache_connection"]
    (cache_file,) = os.listdir(cache_dir)
    with open(os.path.join(cache_dir, cache_file)) as handle:
        stored = json.load(handle)
    # ansible-core keeps the entry as JSON text under __payload__ (a plain dict before 2.19).
    entry = json.loads(stored["__payload__"]) if "__payload__" in stored else stored
    # What such a cache holds: devices named all and after the plugins' group (and nothing the API sends now).
    entry["devices"][0][name_field] = "all"
    entry["devices"][1][name_field] = "msgraph_devices"
    renamed = dict((entry["devices"][i][id_field], entry["devices"][i][name_field]) for i in (0, 1))
    if "__payload__" in stored:
        stored["__payload__"] = json.dumps(entry)
    with open(os.path.join(cache_dir, cache_file), "w") as handle:
        json.dump(stored, handle)
    seen = len(sandbox.wire)

    parsed = source(jsonfile_cache)

    assert len(sandbox.wire) == seen  # from the cache
    assert "all" not in parsed.hosts and "msgraph_devices" not in parsed.hosts
    for device_id, name in renamed.items():
        assert "%s_%s" % (name, device_id) in parsed.hosts
    assert no_group_has_vars(parsed.inventory)
    assert len(warnings) == 2
