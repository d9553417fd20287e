# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""entra_authority on its own: what a tenant may be called in a token URL, the clouds' hosts, and how the
authority's answers (OAuth2 refusals, Graph-shaped errors, managed identity lifetimes) are read."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.fleetguard.devices.plugins.module_utils.entra_authority import (
    CLOUDS,
    check_tenant_id,
    cloud_hosts,
    error_code,
    managed_identity_lifetime,
    refusal_reason,
    text_field,
)
from ansible_collections.fleetguard.devices.plugins.module_utils.errors import InputError
from ansible_collections.fleetguard.devices.plugins.module_utils.tokens import MAX_LIFETIME

TENANT = "0c6e0e5a-9b3e-4b42-8f7e-2f9a5d3c1b77"


@pytest.mark.parametrize("tenant", [TENANT, TENANT.upper(), "contoso.onmicrosoft.com", "Contoso.COM",
                                    "a.b", "x-1.example.org", ("a" * 63 + ".") * 3 + "com"])
def test_tenant_ids_and_domain_names_are_taken_as_written(tenant):
    assert check_tenant_id(tenant) == tenant


@pytest.mark.parametrize("word", ["common", "organizations", "consumers", "Common", "ORGANIZATIONS"])
def test_the_words_for_any_tenant_are_refused_saying_one_tenant_is_needed(word):
    with pytest.raises(InputError) as caught:
        check_tenant_id(word)
    assert "names no tenant" in caught.value.message
    assert word in caught.value.message


@pytest.mark.parametrize("tenant", [
    "contoso", "contoso.onmicrosoft.com/oauth2", "../other-tenant", "contoso.com?x=1", "contoso.com#x",
    "contoso%2Fcom.org", "10.0.0.1", "-contoso.com", "contoso-.com", "contoso..com", " contoso.com",
    ("a" * 64) + ".com", ("a" * 60 + ".") * 5 + "com", "", "contoso.com\n",
])
def test_what_could_move_the_token_url_is_refused_naming_the_value(tenant):
    with pytest.raises(InputError) as caught:
        check_tenant_id(tenant)
    assert "neither a directory (tenant) id" in caught.value.message
    assert "tenant_id" in caught.value.message


@pytest.mark.parametrize("tenant", [None, 42, ["contoso.com"], True])
def test_a_tenant_that_is_not_text_is_named_as_such(tenant):
    with pytest.raises(InputError) as caught:
        check_tenant_id(tenant)
    assert "is not a string" in caught.value.message


@pytest.mark.parametrize("name, cloud", [
    (None, "global"), ("", "global"), ("global", "global"), (" Global ", "global"), ("AzureCloud", "global"),
    ("AzurePublicCloud", "global"), ("public", "global"), ("usgov", "usgov"), ("AzureUSGovernment", "usgov"),
    ("usgovdod", "usgovdod"), ("china", "china"), ("AzureChinaCloud", "china"),
])
def test_clouds_are_known_by_this_collections_names_and_awxs(name, cloud):
    assert cloud_hosts(name) == CLOUDS[cloud]


def test_every_cloud_is_https_on_both_hosts():
    for graph, authority in CLOUDS.values():
        assert graph.startswith("https://") and authority.startswith("https://")


@pytest.mark.parametrize("name", ["germany", "AzureGermanCloud", "azure cloud", "globa"])
def test_an_unknown_cloud_is_named_with_the_accepted_names(name):
    with pytest.raises(InputError) as caught:
        cloud_hosts(name)
    assert name in caught.value.message
    assert "AzureUSGovernment" in caught.value.message and "usgovdod" in caught.value.message


def test_text_field_takes_the_first_field_holding_text_and_cuts_it():
    body = dict(a="", b=7, c="third", d="fourth")
    assert text_field(body, "a", "b", "c", "d") == "third"
    assert text_field(body, "a", "b") is None
    assert len(text_field(dict(long="x" * 100000), "long")) < 2000


@pytest.mark.parametrize("body, code", [
    (dict(error="invalid_client", error_codes=[7000215, 50012]), 7000215),
    (dict(error="invalid_client", error_codes=[]), "invalid_client"),
    (dict(error="invalid_client", error_codes=[True]), "invalid_client"),
    (dict(error="invalid_client", error_codes=["7000215"]), "invalid_client"),
    (dict(error=dict(code="Authorization_RequestDenied", message="no")), "Authorization_RequestDenied"),
    (dict(), None),
])
def test_error_code_prefers_the_aadsts_number_then_the_error(body, code):
    assert error_code(body) == code


@pytest.mark.parametrize("body, reason", [
    (dict(error="invalid_client", error_description="AADSTS7000215: Invalid client secret provided.\r\n"
                                                    "Trace ID: 1\r\nCorrelation ID: 2"),
     "AADSTS7000215: Invalid client secret provided."),
    (dict(error="invalid_client", error_description="   "), "invalid_client"),
    (dict(error=dict(code="Forbidden", message="Insufficient privileges")), "Insufficient privileges"),
    (dict(error=dict(code="Forbidden")), "Forbidden"),
    (dict(error=dict(code="Forbidden", message=["not", "text"])), "Forbidden"),
    (dict(), "HTTP 400"),
])
def test_the_refusal_reason_is_one_line_from_the_most_telling_field(body, reason):
    assert refusal_reason(body, 400) == reason


@pytest.mark.parametrize("body, seconds", [
    (dict(expires_in=3599), 3599),
    (dict(expires_in="3599"), 3599),
    (dict(expires_in="", expires_on=1000 + 600), 600),
    (dict(expires_on="1600"), 600),
    (dict(expires_on=900), 0),  # already expired by this host's clock: serves one request
    (dict(), None),
    (dict(expires_in=None, expires_on=""), None),
])
def test_managed_identity_lifetimes_from_expires_in_or_expires_on(body, seconds):
    assert managed_identity_lifetime(body, now=1000.0) == seconds


@pytest.mark.parametrize("body, field", [
    (dict(expires_in="1e999"), "expires_in"),
    (dict(expires_in="NaN"), "expires_in"),
    (dict(expires_in=-5), "expires_in"),
    (dict(expires_in=True), "expires_in"),
    (dict(expires_in=MAX_LIFETIME + 1), "expires_in"),
    (dict(expires_on="Infinity"), "expires_on"),
    (dict(expires_on="tomorrow"), "expires_on"),
    (dict(expires_on=1000 + MAX_LIFETIME + 1), "expires_on"),
    (dict(expires_on="\u0661\u0662\u0663"), "expires_on"),  # Arabic-Indic digits are not a time
    (dict(expires_on=10 ** 400), "expires_on"),
])
def test_a_lifetime_no_token_may_have_is_named_by_its_field(body, field):
    with pytest.raises(ValueError) as caught:
        managed_identity_lifetime(body, now=1000.0)
    assert field in str(caught.value)
