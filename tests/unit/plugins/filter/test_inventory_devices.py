"""inventory_devices: the devices behind inventory hosts, read from a real inventory's hostvars (host and group
vars, templated), as the roles' host form reads them once per play batch."""

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.fleetguard.devices.plugins.filter.devices import declared_posture, inventory_devices

INVENTORY = """
all:
  children:
    quarantined:
      vars:
        feishu_desired_status: "{{ 'untrusted' }}"
        msgraph_desired_account_enabled: false
      hosts:
        LAPTOP-1:
          feishu_device_record_id: "7400000000000000001"
          msgraph_id: 3f1c5a9e-0000-4000-8000-000000000001
        LAPTOP-2:
          feishu_device_record_id: 7400000000000000002
        PHONE-3:
          msgraph_id: " 3f1c5a9e-0000-4000-8000-000000000003 "
          feishu_device_record_id: null
    other:
      hosts:
        controller:
          ansible_connection: local
        EMPTY-ID:
          msgraph_id: ""
"""


def hostvars_of(tmp_path, text):
    """The hostvars a play would see for the YAML inventory `text`."""
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.vars.hostvars import HostVars
    from ansible.vars.manager import VariableManager

    path = tmp_path / "inventory.yml"
    path.write_text(text)
    loader = DataLoader()
    inventory = InventoryManager(loader=loader, sources=[str(path)])
    return HostVars(inventory=inventory, variable_manager=VariableManager(loader=loader, inventory=inventory),
                    loader=loader)


@pytest.fixture
def hostvars(tmp_path):
    return hostvars_of(tmp_path, INVENTORY)


class TestIds:
    def test_each_host_gives_its_ids_in_the_order_asked(self, hostvars):
        found = inventory_devices(["PHONE-3", "LAPTOP-1", "LAPTOP-2"], hostvars)
        assert found["hosts"] == ["PHONE-3", "LAPTOP-1", "LAPTOP-2"]
        assert found["feishu_ids"] == ["7400000000000000001", "7400000000000000002"]
        # Trimmed; a null id is no id.
        assert found["msgraph_ids"] == ["3f1c5a9e-0000-4000-8000-000000000003", "3f1c5a9e-0000-4000-8000-000000000001"]
        assert [d["name"] for d in found["devices"]] == ["PHONE-3", "LAPTOP-1", "LAPTOP-2"]
        assert found["devices"][0]["feishu_device_record_id"] == "" and found["unknown"] == found["not_devices"] == []

    def test_hosts_not_in_the_inventory_and_hosts_without_ids_are_listed_not_dropped(self, hostvars):
        found = inventory_devices("LAPTOP-1, GHOST\ncontroller,EMPTY-ID,LAPTOP-1", hostvars)
        assert found["unknown"] == ["GHOST"]
        assert found["not_devices"] == ["controller", "EMPTY-ID"]
        assert found["hosts"] == ["LAPTOP-1", "controller", "EMPTY-ID"]
        assert [d["name"] for d in found["devices"]] == ["LAPTOP-1"]

    def test_one_directory_asked_makes_a_host_with_only_the_other_ones_id_no_device(self, hostvars):
        found = inventory_devices(["LAPTOP-1", "LAPTOP-2"], hostvars, directories=["msgraph"])
        assert found["not_devices"] == ["LAPTOP-2"] and found["feishu_ids"] == []
        assert found["devices"] == [{"name": "LAPTOP-1", "feishu_device_record_id": "",
                                     "msgraph_id": "3f1c5a9e-0000-4000-8000-000000000001", "vars": {}}]

    def test_an_unknown_directory_is_refused_naming_it(self, hostvars):
        with pytest.raises(AnsibleFilterError, match="not okta"):
            inventory_devices(["LAPTOP-1"], hostvars, directories=["msgraph", "okta"])


class TestRead:
    def test_group_vars_are_read_templated_and_absent_ones_left_out(self, hostvars):
        found = inventory_devices(["LAPTOP-1", "PHONE-3"], hostvars,
                                  read=["feishu_desired_status", "msgraph_desired_account_enabled",
                                        "msgraph_desired_extension_attributes"])
        assert [d["vars"] for d in found["devices"]] == [
            {"feishu_desired_status": "untrusted", "msgraph_desired_account_enabled": False}] * 2


class TestDeclaredPosture:
    """declared_posture: the baseline entries that device hosts' posture host vars declare."""

    POSTURE = """
all:
  vars:
    feishu_desired_status: untrusted
  hosts:
    BOTH:
      feishu_device_record_id: "7400000000000000001"
      msgraph_id: g-1
      msgraph_desired_account_enabled: false
    FEISHU-ZERO:
      feishu_device_record_id: "7400000000000000002"
      feishu_desired_status: 0
      feishu_desired_ownership: ""
    GRAPH-EMPTY:
      msgraph_id: g-3
      msgraph_desired_extension_attributes: {}
    GRAPH-NULL-ATTRIBUTE:
      msgraph_id: g-4
      msgraph_desired_extension_attributes: {extensionAttribute1: null}
"""

    @pytest.fixture
    def posture_hostvars(self, tmp_path):
        return hostvars_of(tmp_path, self.POSTURE)

    def test_each_directory_of_a_host_gives_an_entry_naming_it_by_id(self, posture_hostvars):
        found = declared_posture(["BOTH", "FEISHU-ZERO", "GRAPH-EMPTY", "GRAPH-NULL-ATTRIBUTE"], posture_hostvars)
        assert found["entries"] == [
            {"name": "BOTH", "device_record_id": "7400000000000000001", "device_status": "untrusted",
             "device_ownership": None},
            {"name": "BOTH", "id": "g-1", "account_enabled": False, "extension_attributes": None},
            # 0 is a value (baseline_plan refuses it, naming it), not "nothing declared"; "" declares nothing.
            {"name": "FEISHU-ZERO", "device_record_id": "7400000000000000002", "device_status": 0,
             "device_ownership": None},
            {"name": "GRAPH-NULL-ATTRIBUTE", "id": "g-4", "account_enabled": None,
             "extension_attributes": {"extensionAttribute1": None}},
        ]
        # A group var for Feishu declares nothing for a Graph-only host; an empty mapping declares nothing.
        assert found["undeclared"] == ["GRAPH-EMPTY"]
        assert found["hosts"] == ["BOTH", "FEISHU-ZERO", "GRAPH-EMPTY", "GRAPH-NULL-ATTRIBUTE"]
