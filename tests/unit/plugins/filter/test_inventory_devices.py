"""inventory_devices: the devices behind inventory hosts, read from a real inventory's hostvars (host and group
vars, templated), as the roles' host form reads them once per play batch."""

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.fleetguard.devices.plugins.filter.devices import baseline_plan, declared_posture, inventory_devices

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
        found = inventory_devices("LAPTOP-1\n GHOST\ncontroller,\nEMPTY-ID\nLAPTOP-1", hostvars)
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


class TestPostureAcrossHosts:
    """declared_posture over the hosts of a whole run: one device named by two hosts, as its API tells ids apart."""

    POSTURE = """
all:
  hosts:
    PC-1:
      msgraph_id: 3f1c5a9e-0000-4000-8000-00000000000a
      msgraph_desired_account_enabled: true
    PC-1-ALIAS:
      msgraph_id: 3F1C5A9E-0000-4000-8000-00000000000A
      msgraph_desired_account_enabled: false
    PC-1-AGAIN:
      msgraph_id: " 3F1C5A9E-0000-4000-8000-00000000000a"
      msgraph_desired_account_enabled: "true"
    RECORD-1:
      feishu_device_record_id: "7400000000000000001"
      feishu_desired_status: trusted
    RECORD-1-AGAIN:
      feishu_device_record_id: "7400000000000000001"
      feishu_desired_status: Trusted
    TAGGED:
      msgraph_id: 3f1c5a9e-0000-4000-8000-00000000000b
      msgraph_desired_extension_attributes: {extensionAttribute7: true, extensionAttribute8: 5}
"""

    @pytest.fixture
    def run_hostvars(self, tmp_path):
        return hostvars_of(tmp_path, self.POSTURE)

    def test_two_hosts_declaring_one_graph_device_differently_are_named_with_both_values(self, run_hostvars):
        found = declared_posture(["PC-1", "PC-1-ALIAS"], run_hostvars)
        assert found["conflicts"] == [
            "Graph device 3f1c5a9e-0000-4000-8000-00000000000a (PC-1-ALIAS names it 3F1C5A9E-0000-4000-8000-00000000000A):"
            " PC-1 declares msgraph_desired_account_enabled=true, PC-1-ALIAS declares false"]

    def test_a_host_repeating_an_earlier_hosts_posture_for_a_device_is_left_to_that_host(self, run_hostvars):
        found = declared_posture(["PC-1", "PC-1-AGAIN", "RECORD-1", "RECORD-1-AGAIN"], run_hostvars)
        assert found["conflicts"] == [] and found["problems"] == []
        assert [entry["name"] for entry in found["entries"]] == ["PC-1", "RECORD-1"]
        assert [(r["name"], r["directory"], r["same_as"]) for r in found["repeats"]] == [
            ("PC-1-AGAIN", "msgraph", "PC-1"), ("RECORD-1-AGAIN", "feishu", "RECORD-1")]
        assert found["undeclared"] == []

    def test_a_batch_drops_the_entries_the_whole_runs_read_left_to_an_earlier_host(self, run_hostvars):
        run = declared_posture(["PC-1", "PC-1-AGAIN"], run_hostvars)
        later_batch = declared_posture(["PC-1-AGAIN"], run_hostvars, repeats=run["repeats"])
        assert later_batch["entries"] == [] and later_batch["undeclared"] == []

    def test_an_extension_attribute_that_is_not_text_is_refused_naming_host_attribute_and_value(self, run_hostvars):
        found = declared_posture(["TAGGED"], run_hostvars)
        assert found["problems"] == [
            "TAGGED: extension attribute extensionAttribute7 must be a string or null, not true",
            "TAGGED: extension attribute extensionAttribute8 must be a string or null, not 5"]
        plan = baseline_plan(found["entries"])
        assert plan["msgraph_groups"] == []
        assert "extensionAttribute7 must be a string or null, not true" in plan["entries"][0]["problems"][0]

    def test_baseline_plan_tells_graph_ids_apart_as_graph_does(self):
        same = baseline_plan([{"id": "3F1C5A9E-0000-4000-8000-00000000000A", "account_enabled": False},
                              {"id": "3f1c5a9e-0000-4000-8000-00000000000a", "account_enabled": False}])
        assert [group["ids"] for group in same["msgraph_groups"]] == [["3F1C5A9E-0000-4000-8000-00000000000A"]]
        clash = baseline_plan([{"id": "3F1C5A9E-0000-4000-8000-00000000000A", "account_enabled": False},
                               {"id": "3f1c5a9e-0000-4000-8000-00000000000a", "account_enabled": True}])
        assert clash["msgraph_groups"] == [] and all(entry["problems"] for entry in clash["entries"])
        # Feishu names are compared exactly: two devices.
        names = baseline_plan([{"device_name": "Mac", "device_status": "trusted"},
                               {"device_name": "MAC", "device_status": "untrusted"}])
        assert [entry["problems"] for entry in names["entries"]] == [[], []]
