"""The option tables are the one source of connection options: argspecs and doc fragments agree with them."""

import os

import pytest
import yaml

from ansible_collections.fleetguard.devices.plugins.doc_fragments import feishu as feishu_fragment
from ansible_collections.fleetguard.devices.plugins.doc_fragments import feishu_inventory as feishu_inventory_fragment
from ansible_collections.fleetguard.devices.plugins.doc_fragments import msgraph as msgraph_fragment
from ansible_collections.fleetguard.devices.plugins.doc_fragments import msgraph_inventory as msgraph_inventory_fragment
from ansible_collections.fleetguard.devices.plugins.module_utils import options


@pytest.mark.parametrize("module, render", [
    (feishu_fragment, options.feishu_fragment),
    (msgraph_fragment, options.msgraph_fragment),
    (feishu_inventory_fragment, options.feishu_inventory_fragment),
    (msgraph_inventory_fragment, options.msgraph_inventory_fragment),
])
def test_committed_doc_fragments_match_the_option_tables(module, render):
    # If this fails, run tools/render-doc-fragments.
    assert yaml.safe_load(module.ModuleDocFragment.DOCUMENTATION) == render()[1]


def test_every_fragment_has_its_renderer():
    assert sorted(options.DOC_FRAGMENTS) == ["feishu", "feishu_inventory", "msgraph", "msgraph_inventory"]


@pytest.mark.parametrize("table", [options.FEISHU_OPTIONS, options.MSGRAPH_OPTIONS])
def test_inventory_options_read_the_same_environment_variables_in_the_same_order(table):
    docs = options.doc_options(table, with_env=True)
    for name, option in table.items():
        # ansible-core takes the last `env:` entry that is set: the table's first variable must come last.
        assert [entry["name"] for entry in docs[name].get("env", [])] == list(reversed(option.get("env", []))), name


@pytest.mark.parametrize("table", [options.FEISHU_OPTIONS, options.MSGRAPH_OPTIONS])
def test_inventory_options_mark_exactly_the_no_log_options_secret(table):
    docs = options.doc_options(table, with_env=True)
    for name, option in table.items():
        assert docs[name].get("secret", False) == option.get("no_log", False), name


def test_module_fragments_have_no_inventory_keys():
    for name, entry in options.doc_options(options.MSGRAPH_OPTIONS).items():
        assert "env" not in entry and "secret" not in entry, name


@pytest.mark.parametrize("table", [options.FEISHU_OPTIONS, options.MSGRAPH_OPTIONS])
def test_secrets_and_only_secrets_are_no_log(table):
    secret_words = ("secret", "token", "password")
    for name, spec in options.argument_spec(table).items():
        # A file or path names where a secret is, it is not one (ansible-test's no-log-needed rule agrees).
        looks_secret = any(word in name for word in secret_words) and not name.endswith(("_file", "_path"))
        assert spec.get("no_log", False) == looks_secret, name


def test_env_fallbacks_keep_the_awx_order():
    fallback = options.non_empty_env_fallback
    spec = options.argument_spec(options.MSGRAPH_OPTIONS)
    assert spec["client_secret"]["fallback"] == (fallback, ["AZURE_CLIENT_SECRET", "AZURE_SECRET"])
    assert spec["tenant_id"]["fallback"] == (fallback, ["AZURE_TENANT_ID", "AZURE_TENANT"])
    assert spec["cloud"]["fallback"] == (fallback, ["AZURE_CLOUD_ENVIRONMENT"])
    feishu = options.argument_spec(options.FEISHU_OPTIONS)
    assert feishu["app_secret"]["fallback"] == (fallback, ["FEISHU_APP_SECRET"])
    assert feishu["validate_certs"]["default"] is True


def test_an_empty_injected_variable_counts_as_not_set(monkeypatch):
    from ansible.module_utils.errors import AnsibleFallbackNotFound

    monkeypatch.setenv("AZURE_CLIENT_SECRET", "")
    monkeypatch.setenv("AZURE_SECRET", "from-awx")
    assert options.non_empty_env_fallback("AZURE_CLIENT_SECRET", "AZURE_SECRET") == "from-awx"
    monkeypatch.setenv("FEISHU_BASE_URL", "")
    with pytest.raises(AnsibleFallbackNotFound):
        options.non_empty_env_fallback("FEISHU_BASE_URL")


def test_every_env_var_is_documented():
    for table, render in ((options.FEISHU_OPTIONS, options.feishu_fragment),
                          (options.MSGRAPH_OPTIONS, options.msgraph_fragment),
                          (options.FEISHU_OPTIONS, options.feishu_inventory_fragment),
                          (options.MSGRAPH_OPTIONS, options.msgraph_inventory_fragment)):
        docs = render()[1]["options"]
        for name, option in table.items():
            text = " ".join(docs[name]["description"])
            for var in option.get("env", []):
                assert "E(%s)" % var in text, (name, var)


def test_the_renderer_exists_next_to_the_fragments():
    here = os.path.dirname(os.path.abspath(__file__))
    assert os.path.exists(os.path.join(here, "..", "..", "..", "..", "tools", "render-doc-fragments"))
