"""connection_options / trust_lookups / trust_preflight / release_refusals: what the roles quarantine, release, audit
and stale_devices decide before they call a module."""

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.fleetguard.devices.plugins.filter.connection import connection_options
from ansible_collections.fleetguard.devices.plugins.filter.release import release_refusals
from ansible_collections.fleetguard.devices.plugins.filter.trust import trust_lookups, trust_preflight


# --- connection_options --------------------------------------------------------------------------------------


def test_empty_options_are_dropped_so_the_modules_read_their_environment():
    connection = {"tenant_id": "t", "client_id": "", "client_secret": None, "validate_certs": False, "max_retries": 0}
    assert connection_options(connection) == {"tenant_id": "t", "validate_certs": False, "max_retries": 0}


@pytest.mark.parametrize("value", [None, "", {}])
def test_no_connection_is_no_option(value):
    assert connection_options(value) == {}


def test_a_connection_that_is_no_mapping_fails_naming_its_type_only():
    with pytest.raises(AnsibleFilterError) as caught:
        connection_options(["s3cret"])
    assert "not a list" in str(caught.value) and "s3cret" not in str(caught.value)


# --- trust_lookups -------------------------------------------------------------------------------------------


def identifiers(prefix="quarantine", **given):
    names = ("feishu_device_record_ids", "feishu_serial_numbers", "feishu_device_names", "msgraph_ids",
             "msgraph_device_ids", "msgraph_display_names")
    return dict(("%s_%s" % (prefix, name), given.get(name, [])) for name in names)


def test_each_identifier_kind_with_values_is_one_call_and_survey_text_is_split():
    found = trust_lookups(identifiers(feishu_serial_numbers="C02FG0001, C02FG0002", msgraph_display_names=["FG-1"]))
    assert found == {"feishu": [{"field": "serial_number", "ids": ["C02FG0001", "C02FG0002"]}],
                     "msgraph": [{"field": "display_name", "ids": ["FG-1"]}],
                     "identifier_variables": ["quarantine_feishu_serial_numbers", "quarantine_msgraph_display_names"]}


def test_the_inventory_hosts_ids_join_the_record_and_object_ids_but_are_no_identifier_variable():
    inventory = {"feishu_ids": ["71", "72"], "msgraph_ids": ["aa"]}
    found = trust_lookups(identifiers("release", feishu_device_record_ids=["72", "73"]), inventory)
    assert found["feishu"] == [{"field": "device_record_id", "ids": ["72", "73", "71"]}]
    assert found["msgraph"] == [{"field": "id", "ids": ["aa"]}]
    assert found["identifier_variables"] == ["release_feishu_device_record_ids"]


def test_a_missing_identifier_variable_fails_naming_it():
    variables = identifiers()
    del variables["quarantine_msgraph_ids"]
    with pytest.raises(AnsibleFilterError, match="one identifier variable ending in msgraph_ids, found none"):
        trust_lookups(variables)


# --- trust_preflight -----------------------------------------------------------------------------------------


def test_failed_calls_are_problems_named_by_directory_and_resolved_ids_are_listed_once():
    feishu = {"results": [{"outcomes": [{"device_record_id": "71"}, {"device_record_id": "71"}]},
                          {"msg": "nothing was changed: serial_number='X' matches no device record"}]}
    msgraph = {"results": [{"outcomes": [{"id": "aa"}, {"id": None}]}]}
    assert trust_preflight(feishu, msgraph) == {
        "problems": ["Feishu: nothing was changed: serial_number='X' matches no device record"],
        "feishu_ids": ["71"], "msgraph_ids": ["aa"]}


def test_a_skipped_pass_has_no_problem_and_no_id():
    assert trust_preflight({"results": [], "skipped": True}, None) == {"problems": [], "feishu_ids": [], "msgraph_ids": []}


# --- release_refusals ----------------------------------------------------------------------------------------


def graph(device_id, tag=None, enabled=True, name="FG-1"):
    return {"id": device_id, "displayName": name, "accountEnabled": enabled,
            "extensionAttributes": {"extensionAttribute15": tag}}


def test_a_feishu_record_never_vetted_is_refused_and_trusted_or_untrusted_ones_are_not():
    current = {"device_records": [{"device_record_id": "71", "device_name": "FG-A", "device_status": 0},
                                  {"device_record_id": "72", "device_status": 0},
                                  {"device_record_id": "73", "device_status": 1},
                                  {"device_record_id": "74", "device_status": 2}]}
    assert release_refusals(current, None, "extensionAttribute15", "quarantine:") == [
        'Feishu record 71 (FG-A) is "unknown", not untrusted: it shows no sign of a quarantine',
        'Feishu record 72 (no name) is "unknown", not untrusted: it shows no sign of a quarantine']


def test_a_graph_device_with_the_tag_or_enabled_without_one_passes_and_the_others_are_refused():
    current = {"devices": [graph("a", "quarantine:INC-1", enabled=False), graph("b"), graph("c", "other", name="FG-C"),
                           graph("d", enabled=False, name="FG-D")]}
    assert release_refusals({"skipped": True}, current, "extensionAttribute15", "quarantine:") == [
        'Graph device c (FG-C) has extensionAttribute15="other", not a quarantine tag',
        "Graph device d (FG-D) is disabled but carries no quarantine tag in extensionAttribute15"]
    # A release that leaves accounts as they are does not mind a disabled device without a tag.
    assert release_refusals(None, current, "extensionAttribute15", "quarantine:", False) == [
        'Graph device c (FG-C) has extensionAttribute15="other", not a quarantine tag']


def test_the_role_filters_work_through_jinja(render):
    assert render("c | fleetguard.devices.connection_options", c={"a": "", "b": 1}) == {"b": 1}
    assert render("f | fleetguard.devices.release_refusals(g, 'extensionAttribute15', 'q:')", f=None,
                  g={"devices": [graph("b")]}) == []
    assert render("v | fleetguard.devices.trust_lookups(none)", v=identifiers(msgraph_ids="aa"))["msgraph"] == [
        {"field": "id", "ids": ["aa"]}]
