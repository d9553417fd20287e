"""Fixtures for the inventory plugins: parse a source file with the real plugin, as ansible-inventory does."""

import sys

import pytest
import yaml

from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import inventory_loader

# Ansible's inventory cache settings: a developer's shell must not change what the tests see (the connection
# variables are cleared by no_connection_env, tests/unit/conftest.py).
CACHE_ENV = ("ANSIBLE_INVENTORY_CACHE", "ANSIBLE_CACHE_PLUGIN", "ANSIBLE_INVENTORY_CACHE_PLUGIN",
             "ANSIBLE_CACHE_PLUGIN_CONNECTION", "ANSIBLE_INVENTORY_CACHE_CONNECTION")


class Parsed:
    """What a parse produced, read the way the tests ask."""

    def __init__(self, inventory):
        self.inventory = inventory

    @property
    def hosts(self):
        return sorted(self.inventory.hosts)

    def vars(self, host):
        return self.inventory.get_host(host).get_vars()

    def group(self, name):
        """Host names of a group, or None when there is no such group."""
        group = self.inventory.groups.get(name)
        return sorted(host.name for host in group.get_hosts()) if group is not None else None


class SourceParser:
    """parse(config, cache=True, inventory=None) -> Parsed, through a source file named devices.NAME.yml in tmp_path,
    into `inventory` (an InventoryData another source filled, as with two -i) or a new one."""

    def __init__(self, plugin_name, tmp_path):
        self.plugin_name = plugin_name
        self.path = tmp_path / ("devices.%s.yml" % plugin_name.rsplit(".", 1)[-1])

    def __call__(self, config, cache=True, inventory=None):
        self.path.write_text(yaml.safe_dump(dict(config, plugin=self.plugin_name)))
        inventory = InventoryData() if inventory is None else inventory
        inventory.current_source = str(self.path)
        plugin = inventory_loader.get(self.plugin_name)
        assert plugin.verify_file(str(self.path))
        plugin.parse(inventory, DataLoader(), str(self.path), cache=cache)
        # What the inventory manager does after a parse: write the inventory cache out.
        if plugin.get_option("cache"):
            plugin.update_cache_if_changed()
        return Parsed(inventory)


@pytest.fixture(autouse=True)
def clean_connection_env(monkeypatch, no_connection_env):
    for name in CACHE_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def feishu_source(tmp_path, feishu_sandbox):
    """parse(config) with the sandbox's connection settings merged into config."""
    parser = SourceParser("fleetguard.devices.feishu_device_records", tmp_path)
    connection = dict(base_url=feishu_sandbox.url, app_id=feishu_sandbox.app_id, app_secret=feishu_sandbox.app_secret,
                      max_retries=1)
    return lambda config=None, cache=True, inventory=None: parser(dict(connection, **(config or {})), cache=cache,
                                                                  inventory=inventory)


@pytest.fixture
def graph_source(tmp_path, graph_sandbox):
    parser = SourceParser("fleetguard.devices.msgraph_devices", tmp_path)
    connection = dict(graph_endpoint=graph_sandbox.url, authority_host=graph_sandbox.url,
                      tenant_id=graph_sandbox.tenant_id, client_id=graph_sandbox.client_id,
                      client_secret=graph_sandbox.client_secret, max_retries=1)
    return lambda config=None, cache=True, inventory=None: parser(dict(connection, **(config or {})), cache=cache,
                                                                  inventory=inventory)


@pytest.fixture
def jsonfile_cache(tmp_path):
    """Inventory options for a jsonfile cache in tmp_path/cache."""
    return dict(cache=True, cache_plugin="ansible.builtin.jsonfile", cache_connection=str(tmp_path / "cache"))


class ExampleLoader(yaml.SafeLoader):
    """Reads EXAMPLES, where a vaulted value is just text."""


ExampleLoader.add_constructor("!vault", lambda loader, node: loader.construct_scalar(node))


@pytest.fixture
def documented_examples():
    """examples(plugin_name) -> (every source document of its EXAMPLES, the names of its documented options)."""
    from ansible import constants

    def examples(plugin_name):
        plugin = inventory_loader.get(plugin_name)
        module = sys.modules[type(plugin).__module__]
        options = constants.config.get_configuration_definitions("inventory", plugin._load_name)
        return list(yaml.load_all(module.EXAMPLES, Loader=ExampleLoader)), set(options)

    return examples
