"""stale_devices_settings / _plan / _report: the decisions of the stale_devices role, device by device.

The role only reads, asks these filters, and hands their write lists to the write modules; so what is proved here is
what the role does, in check mode and for real alike.
"""

import os
import re

import pytest
import yaml

from ansible.errors import AnsibleFilterError
from ansible_collections.fleetguard.devices.plugins.filter.stale_devices import (
    stale_devices_plan,
    stale_devices_report,
    stale_devices_settings,
)
from ansible_collections.fleetguard.devices.plugins.module_utils.options import MSGRAPH_OPTIONS

COLLECTION_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
TODAY = "2026-11-28"


def variables(**overrides):
    """The role's defaults, as vars/main.yml hands them to the filter."""
    values = dict(mode="report", inactive_days=90, grace_days=30, include_never_signed_in=False,
                  reenable_returned=False, operating_systems=[], trust_types=["AzureAd", "Workplace"], exclude=[],
                  exclude_extension_attributes={}, tag_attribute="extensionAttribute14", tag_prefix="stale-disabled:",
                  max_changes=100, as_of="", as_of_writes=False, today=TODAY, inventory_ids=None)
    values.update(overrides)
    return values


def settings(**overrides):
    result = stale_devices_settings(variables(**overrides))
    assert result["problems"] == []
    return result


def device(name, signed_in="2026-01-10T08:00:00Z", enabled=True, os_name="Windows", tag=None, **extra):
    attributes = dict(("extensionAttribute%d" % n, None) for n in range(1, 16))
    attributes["extensionAttribute14"] = tag
    attributes.update(extra.pop("attributes", {}))
    body = {"id": "id-" + name.lower(), "deviceId": "dev-" + name.lower(), "displayName": name,
            "accountEnabled": enabled, "operatingSystem": os_name, "trustType": "AzureAd",
            "approximateLastSignInDateTime": signed_in, "physicalIds": [], "extensionAttributes": attributes}
    body.update(extra)
    return body


def decided(devices, **overrides):
    plan = stale_devices_plan(devices, settings(**overrides))
    return dict((row["displayName"], (row["action"], row["reason"])) for row in plan["rows"]), plan


# settings


def test_the_cutoff_is_midnight_utc_of_the_day_minus_inactive_days_and_the_tag_carries_the_date():
    result = settings()
    assert result["cutoff"] == "2026-08-30T00:00:00Z"
    assert result["tag"] == "stale-disabled:2026-11-28"
    stale, never, tagged = result["queries"]
    assert stale == {"name": "stale", "filter": "trustType in ('AzureAd','Workplace')",
                     "last_sign_in_before": "2026-08-30T00:00:00Z", "advanced_query": False}
    assert never["filter"] == "approximateLastSignInDateTime eq null and trustType in ('AzureAd','Workplace')"
    assert never["advanced_query"] and tagged["advanced_query"]
    assert tagged["filter"].startswith("startswith(extensionAttributes/extensionAttribute14, 'stale-disabled:')")


def test_scope_literals_are_quoted_for_odata_and_every_trust_type_means_no_clause():
    result = settings(operating_systems="Windows, O'Brien OS", trust_types=["azuread", "WORKPLACE", "ServerAd"])
    assert result["scope_filter"] == "(operatingSystem eq 'Windows' or operatingSystem eq 'O''Brien OS')"
    assert result["trust_types"] == ["AzureAd", "Workplace", "ServerAd"]


@pytest.mark.parametrize("overrides, says", [
    (dict(mode="purge"), "stale_devices_mode must be one of report, disable, delete"),
    (dict(inactive_days=10), "stale_devices_inactive_days is 10; it must be at least 20"),
    (dict(grace_days=0), "stale_devices_grace_days is 0; it must be at least 1"),
    (dict(max_changes="many"), "stale_devices_max_changes must be a whole number"),
    (dict(trust_types=["Hybrid"]), "Graph's trust types are AzureAd, Workplace, ServerAd"),
    (dict(tag_attribute="extensionAttribute16"), "stale_devices_tag_attribute must be one of"),
    (dict(tag_prefix=""), "stale_devices_tag_prefix must be a non-empty string"),
    (dict(as_of="28.11.2026"), "stale_devices_as_of must be a date"),
    (dict(as_of="\u0662\u0660\u0662\u0666-\u0661\u0661-\u0662\u0668"), "stale_devices_as_of must be a date"),
    (dict(mode="disable", as_of="2026-12-29"), "a disable run takes its tag dates and grace periods from it"),
    (dict(exclude_extension_attributes={"extensionAttribute99": "keep"}), "must be one of extensionAttribute1"),
    (dict(include_never_signed_in="yes"), "stale_devices_include_never_signed_in must be true or false"),
])
def test_bad_variables_are_named_before_any_request(overrides, says):
    problems = stale_devices_settings(variables(**overrides))["problems"]
    assert any(says in problem for problem in problems), problems


@pytest.mark.parametrize("name", ["inactive_days", "grace_days", "max_changes"])
@pytest.mark.parametrize("value, says", [
    (10 ** 9, "is 1000000000; it must be at most"),
    (-5, "is -5; it must be at least"),
    (1.5, "must be a whole number, not 1.5"),
    (90.0, "must be a whole number, not 90.0"),
    (True, "must be a whole number, not True"),
    ("1e9", "must be a whole number, not '1e9'"),
    ("9" * 5000, "must be a whole number, not '999"),
    ("9_0", "must be a whole number, not '9_0'"),
    ("\u0669\u0660", "must be a whole number, not"),
], ids=["huge", "negative", "fraction", "float", "bool", "exponent", "thousands-of-digits", "underscore", "arabic-indic"])
def test_numbers_out_of_bounds_are_named_not_raised(name, value, says):
    problems = stale_devices_settings(variables(**{name: value}))["problems"]
    assert any(problem.startswith("stale_devices_%s " % name) and says in problem for problem in problems), problems
    assert all(len(problem) < 400 for problem in problems)


def test_zero_is_refused_for_the_day_counts_and_allowed_for_max_changes():
    problems = stale_devices_settings(variables(inactive_days=0, grace_days=0, max_changes=0))["problems"]
    assert [problem.split(";")[0] for problem in problems] == ["stale_devices_inactive_days is 0",
                                                               "stale_devices_grace_days is 0"]


def test_survey_text_numbers_are_read():
    assert settings(inactive_days=" 120 ", grace_days="7", max_changes="0")["inactive_days"] == 120


@pytest.mark.parametrize("as_of", ["0001-01-01", "9999-12-31", "1900-01-01"])
def test_a_reference_day_far_from_today_is_named_not_raised(as_of):
    problems = stale_devices_settings(variables(as_of=as_of))["problems"]
    assert any(problem.startswith("stale_devices_as_of is %s; it must be within" % as_of)
               for problem in problems), problems


def test_the_longest_spans_still_plan_without_leaving_the_calendar():
    longest = settings(inactive_days=3650, grace_days=3650, as_of="2036-11-25")
    devices = [device("Old", "1990-01-01T00:00:00Z", enabled=False, tag="stale-disabled:2036-11-24"),
               device("Ancient", "0001-01-01T00:00:00Z")]
    rows = dict((row["displayName"], row["action"]) for row in stale_devices_plan(devices, longest)["rows"])
    assert rows == {"Old": "grace", "Ancient": "disable"}


@pytest.mark.parametrize("signed_in", ["2026-13-01T00:00:00Z", "0001-01-01T00:00:00+01:00"])
def test_a_sign_in_time_that_is_no_time_fails_the_plan_naming_the_device_and_value(signed_in):
    says = re.escape("device id-odd has approximateLastSignInDateTime '%s'" % signed_in)
    with pytest.raises(AnsibleFilterError, match=says):
        stale_devices_plan([device("Odd", signed_in)], settings())


# exclusions


def test_survey_text_with_line_breaks_is_one_exclusion_per_line_commas_kept():
    text = "Smith, John's iPad\r\n FG-WS-0008 \n\n"
    assert settings(exclude=text)["exclude"] == ["Smith, John's iPad", "FG-WS-0008"]
    assert settings(exclude="FG-WS-0008, FG-WS-0011")["exclude"] == ["FG-WS-0008", "FG-WS-0011"]


def test_a_comma_in_a_line_of_multi_line_operating_systems_is_refused():
    problems = stale_devices_settings(variables(operating_systems="Windows, MacMDM\niOS"))["problems"]
    assert any("stale_devices_operating_systems holds 'Windows, MacMDM'" in problem for problem in problems), problems


def test_exclusions_that_match_no_device_read_are_listed_and_warned(monkeypatch):
    warned = []
    monkeypatch.setattr("ansible_collections.fleetguard.devices.plugins.filter.stale_devices.display.warning",
                        warned.append)
    devices = [device("Smith, John's iPad"), device("Kept")]
    plan = stale_devices_plan(devices, settings(exclude="smith, john's ipad\nFG-GONE-01\nid-KEPT\ndev-nothing"))
    assert [row["action"] for row in plan["rows"]] == ["excluded", "excluded"]
    assert plan["unmatched_exclusions"] == ["FG-GONE-01", "dev-nothing"]
    assert len(warned) == 1 and "'FG-GONE-01', 'dev-nothing'" in warned[0] and "stale_devices_exclude" in warned[0]
    report = stale_devices_report(plan, {})
    assert report["unmatched_exclusions"] == ["FG-GONE-01", "dev-nothing"]


def test_exclusions_that_all_match_warn_nothing(monkeypatch):
    warned = []
    monkeypatch.setattr("ansible_collections.fleetguard.devices.plugins.filter.stale_devices.display.warning",
                        warned.append)
    plan = stale_devices_plan([device("A")], settings(exclude=["a"]))
    assert plan["unmatched_exclusions"] == [] and warned == []


def test_a_report_may_look_ahead_and_a_moved_emulator_clock_may_write_when_told():
    assert settings(as_of="2027-01-01")["tag"] == "stale-disabled:2027-01-01"
    assert settings(mode="delete", as_of="2026-12-29", as_of_writes=True)["as_of"] == "2026-12-29"


# plan


def test_each_device_gets_its_action():
    devices = [
        device("Stale", "2026-01-10T08:00:00Z"),
        device("Fresh", "2026-11-01T08:00:00Z"),
        device("AtCutoff", "2026-08-30T00:00:00Z"),
        device("Never", None),
        device("AlreadyOff", "2026-01-10T08:00:00Z", enabled=False),
        device("OtherTag", "2026-01-10T08:00:00Z", tag="asset-42"),
        device("Autopilot", "2026-01-10T08:00:00Z", physicalIds=["[ZTDID]:abc"]),
        device("Listed", "2026-01-10T08:00:00Z"),
        device("Kept", "2026-01-10T08:00:00Z", attributes={"extensionAttribute13": " KEEP "}),
        device("Due", "2026-01-10T08:00:00Z", enabled=False, tag="stale-disabled:2026-10-28"),
        device("Waiting", "2026-01-10T08:00:00Z", enabled=False, tag="stale-disabled:2026-11-01"),
        device("CameBack", "2026-11-20T08:00:00Z", enabled=False, tag="stale-disabled:2026-10-01"),
        device("EnabledAgain", "2026-01-10T08:00:00Z", enabled=True, tag="stale-disabled:2026-10-01"),
        device("BadTag", "2026-01-10T08:00:00Z", enabled=False, tag="stale-disabled:someday"),
    ]
    actions, plan = decided(devices, exclude=["dev-listed"],
                            exclude_extension_attributes={"extensionAttribute13": "keep"})
    assert dict((name, action) for name, (action, dummy) in actions.items()) == {
        "Stale": "disable", "Fresh": "keep", "AtCutoff": "disable", "Never": "never_signed_in",
        "AlreadyOff": "already_disabled", "OtherTag": "blocked", "Autopilot": "excluded", "Listed": "excluded",
        "Kept": "excluded", "Due": "delete", "Waiting": "grace", "CameBack": "came_back", "EnabledAgain": "keep",
        "BadTag": "keep",
    }
    assert plan["writes"] == {"disable": ["id-stale", "id-atcutoff"], "reenable": [], "delete": ["id-due"]}
    assert plan["changes"] == {"disable": 2, "delete": 1}
    assert "deletion due on 2026-12-01 (27 of 30 grace days passed)" in actions["Waiting"][1]
    assert "listed in stale_devices_exclude (its deviceId)" in actions["Listed"][1]
    assert "signed in on 2026-11-20, after it was disabled and tagged on 2026-10-01" in actions["CameBack"][1]
    row = next(row for row in plan["rows"] if row["displayName"] == "Due")
    assert (row["age_days"], row["tag_date"]) == (321, "2026-10-28")


def test_never_signed_in_devices_count_as_stale_at_once_only_when_asked():
    devices = [device("Never", None), device("NeverTagged", None, enabled=False, tag="stale-disabled:2026-10-01")]
    actions, plan = decided(devices, include_never_signed_in=True)
    assert (actions["Never"][0], actions["NeverTagged"][0]) == ("disable", "delete")
    actions, plan = decided(devices)
    assert (actions["Never"][0], actions["NeverTagged"][0]) == ("never_signed_in", "never_signed_in")
    assert plan["writes"] == {"disable": [], "reenable": [], "delete": []}


def test_a_device_that_came_back_is_reenabled_and_its_tag_cleared_only_when_asked():
    devices = [device("CameBack", "2026-11-20T08:00:00Z", enabled=False, tag="stale-disabled:2026-10-01")]
    actions, plan = decided(devices, mode="disable", reenable_returned=True)
    assert actions["CameBack"][0] == "reenable" and plan["writes"]["reenable"] == ["id-cameback"]
    assert plan["changes"] == {"disable": 1, "delete": 1}


def test_the_guard_counts_devices_of_the_runs_mode_and_trips_above_max_changes():
    devices = [device("S%d" % n) for n in range(3)] + [device("D", enabled=False, tag="stale-disabled:2026-10-01")]
    dummy, plan = decided(devices, mode="disable", max_changes=3)
    assert plan["guard"] == {"max_changes": 3, "changes": 3, "tripped": False}
    dummy, plan = decided(devices, mode="disable", max_changes=2)
    assert plan["guard"] == {"max_changes": 2, "changes": 3, "tripped": True}
    dummy, plan = decided(devices, mode="delete", max_changes=1)
    assert plan["guard"]["tripped"] is False
    dummy, plan = decided(devices, mode="report", max_changes=0)
    assert plan["guard"]["tripped"] is False  # report writes nothing


def test_an_app_only_refusal_blocks_non_windows_devices_and_a_probe_is_offered_before():
    devices = [device("Win"), device("Mac", os_name="MacMDM")]
    dummy, plan = decided(devices, mode="disable")
    assert plan["probe"] == {"id": "id-mac", "account_enabled": False}
    plan = stale_devices_plan(devices, settings(mode="disable"), "an app-only caller may change only ...")
    actions = dict((row["displayName"], row["action"]) for row in plan["rows"])
    assert actions == {"Win": "disable", "Mac": "blocked"} and plan["probe"] is None


def test_the_host_form_decides_only_the_inventory_devices_and_duplicates_merge():
    devices = [device("A"), device("B"), device("A")]
    plan = stale_devices_plan(devices, settings(inventory_ids=["ID-A"]))
    assert [row["id"] for row in plan["rows"]] == ["id-a"]


def test_the_plan_refuses_settings_with_problems():
    with pytest.raises(AnsibleFilterError):
        stale_devices_plan([], stale_devices_settings(variables(mode="purge")))


# report


def result(*outcomes, **extra):
    return dict(outcomes=[{"id": object_id, "outcome": outcome} for object_id, outcome in outcomes], **extra)


def test_report_statuses_follow_the_mode_check_mode_the_guard_and_the_outcomes():
    devices = [device("S1"), device("S2"), device("D", enabled=False, tag="stale-disabled:2026-10-01")]
    plan = stale_devices_plan(devices, settings(mode="disable"))
    done = stale_devices_report(plan, {"disable": result(("id-s1", "changed"), ("id-s2", "failed"))})
    statuses = dict((row["displayName"], row["status"]) for row in done["devices"])
    assert statuses == {"S1": "done", "S2": "failed", "D": "planned"}
    assert done["summary"]["done"] == 1 and done["summary"]["failed"] == 1 and done["summary"]["disable"] == 2
    assert done["written"] == [{"id": "id-s1", "displayName": "S1", "action": "disable"}]
    assert done["failed_writes"] == [{"id": "id-s2", "displayName": "S2", "action": "disable"}]

    would = stale_devices_report(plan, {"disable": result(("id-s1", "changed"), ("id-s2", "changed"))}, True)
    assert [row["status"] for row in would["devices"]] == ["planned", "would", "would"]
    assert would["check_mode"] is True and would["as_of"] == TODAY

    tripped = stale_devices_plan(devices, settings(mode="disable", max_changes=1))
    stopped = stale_devices_report(tripped, {})
    assert [row["status"] for row in stopped["devices"]] == ["planned", "stopped", "stopped"]
    assert stopped["guard"] == {"max_changes": 1, "changes": 2, "tripped": True,
                                "would_change": {"disable": 2, "delete": 1}}


def test_the_report_is_plain_json_with_the_documented_keys():
    import json
    report = stale_devices_report(stale_devices_plan([device("S1")], settings()), {}, False, "Nightly")
    assert list(report) == ["report", "format_version", "title", "mode", "check_mode", "as_of", "settings",
                            "inventory_hosts", "guard", "refusal", "unmatched_exclusions", "summary", "written",
                            "failed_writes", "devices"]
    assert list(report["devices"][0]) == ["id", "deviceId", "displayName", "operatingSystem", "trustType",
                                          "accountEnabled", "approximateLastSignInDateTime", "age_days", "tag",
                                          "tag_date", "action", "reason", "status"]
    assert json.loads(json.dumps(report)) == report


# the role's interface


def test_the_role_connection_dict_takes_every_graph_connection_option_with_its_type_choices_and_no_log():
    with open(os.path.join(COLLECTION_ROOT, "roles", "stale_devices", "meta", "argument_specs.yml")) as handle:
        options = yaml.safe_load(handle)["argument_specs"]["main"]["options"]
    spec = options["stale_devices_msgraph_connection"]
    assert (spec["type"], spec["default"]) == ("dict", {})
    assert sorted(spec["options"]) == sorted(MSGRAPH_OPTIONS)
    for name, option in MSGRAPH_OPTIONS.items():
        assert spec["options"][name]["type"] == option["type"], name
        assert spec["options"][name].get("choices") == option.get("choices"), name
        assert bool(spec["options"][name].get("no_log")) == bool(option.get("no_log")), name
        assert "default" not in spec["options"][name], name


def test_every_role_default_is_in_the_argument_spec_with_the_same_default():
    with open(os.path.join(COLLECTION_ROOT, "roles", "stale_devices", "meta", "argument_specs.yml")) as handle:
        options = yaml.safe_load(handle)["argument_specs"]["main"]["options"]
    with open(os.path.join(COLLECTION_ROOT, "roles", "stale_devices", "defaults", "main.yml")) as handle:
        defaults = yaml.safe_load(handle)
    assert sorted(defaults) == sorted(options)
    for name, value in defaults.items():
        if "{{" not in str(value) and name != "stale_devices_report_dir":
            assert options[name]["default"] == value, name


def test_the_filters_render_in_jinja_as_the_role_calls_them(render):
    value = render("vars_ | fleetguard.devices.stale_devices_settings", vars_=variables())
    assert value["cutoff"] == "2026-08-30T00:00:00Z"


def test_the_probe_is_a_device_graphs_rule_documents_as_non_windows_never_one_it_does_not_place():
    # Check mode cannot tell whether Graph takes a write to "Windows Server": such a device says nothing about the caller.
    devices = [device("Srv", os_name="Windows Server"), device("Blank", os_name=None), device("Mac", os_name="MacMDM")]
    dummy, plan = decided(devices, mode="disable")
    assert plan["probe"] == {"id": "id-mac", "account_enabled": False}
    dummy, plan = decided(devices[:2], mode="disable")
    assert plan["probe"] is None


def test_the_filter_asks_the_modules_windows_rule():
    # The filter's probe and its blocked rows follow windows_class: an undocumented device is not Windows there.
    from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_properties import WINDOWS, windows_class
    from ansible_collections.fleetguard.devices.plugins.plugin_utils import stale_lifecycle

    for operating_system in ("Windows", "Windows Server", None, "iOS"):
        row = {"operatingSystem": operating_system}
        assert stale_lifecycle.windows(row) is (windows_class(operating_system) == WINDOWS)
