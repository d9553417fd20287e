"""The roles pass <role>_feishu_connection and <role>_msgraph_connection to the modules (module_defaults): each
dict's options in meta/argument_specs.yml must be the modules' connection options, one table in options.py, with
the same types, choices and no_log, or a role run with an option the modules take fails argument validation."""

import os

import pytest
import yaml

from ansible_collections.fleetguard.devices.plugins.module_utils.options import FEISHU_OPTIONS, MSGRAPH_OPTIONS

COLLECTION = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
ROLES = ("quarantine", "release", "audit")
TABLES = {"feishu": FEISHU_OPTIONS, "msgraph": MSGRAPH_OPTIONS}


def connection_spec(role, api):
    with open(os.path.join(COLLECTION, "roles", role, "meta", "argument_specs.yml")) as handle:
        specs = yaml.safe_load(handle)
    return specs["argument_specs"]["main"]["options"]["%s_%s_connection" % (role, api)]


@pytest.mark.parametrize("api", sorted(TABLES))
@pytest.mark.parametrize("role", ROLES)
def test_role_connection_dict_takes_every_module_connection_option_with_its_type_choices_and_no_log(role, api):
    spec = connection_spec(role, api)
    table = TABLES[api]

    assert (spec["type"], spec["default"]) == ("dict", {})
    assert sorted(spec["options"]) == sorted(table)
    for name, option in table.items():
        role_option = spec["options"][name]
        assert role_option["type"] == option["type"], name
        # cloud has no choices in the table: the module takes the AWX names too and checks the value itself.
        assert role_option.get("choices") == option.get("choices"), name
        assert bool(role_option.get("no_log")) == bool(option.get("no_log")), name
        # An option left out falls back to the module's environment variable, then its default.
        assert "default" not in role_option, name
