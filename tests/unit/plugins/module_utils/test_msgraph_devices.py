"""Addressing and input checks of msgraph_devices: no value can change a URL path or an OData filter."""

import pytest

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import InputError
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_properties import (
    NOT_WINDOWS,
    UNDOCUMENTED,
    WINDOWS,
    desired_properties,
    normalize_extension_attributes,
    windows_class,
)
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_odata import DeviceAddress, odata_string, query_string

GUID = "6a59ea83-02bd-468f-a40b-f2c3d1821983"


@pytest.mark.parametrize("value, literal", [
    ("LAPTOP-01", "'LAPTOP-01'"),
    ("Bob's iPhone", "'Bob''s iPhone'"),
    ("' or 1 eq 1 or displayName eq '", "''' or 1 eq 1 or displayName eq '''"),
])
def test_odata_string_literals_cannot_be_escaped(value, literal):
    assert odata_string(value) == literal


def test_query_strings_encode_values_but_keep_odata_syntax():
    assert query_string([("$filter", "displayName eq 'a&b=c#d'"), ("$top", 2), ("$count", None)]) == (
        "?$filter=displayName%20eq%20'a%26b%3Dc%23d'&$top=2")


@pytest.mark.parametrize("version, user, path", [
    ("v1.0", None, "/devices/" + GUID),
    ("beta", "me", "/me/devices/" + GUID),
    ("beta", GUID, "/users/%s/devices/%s" % (GUID, GUID)),
    ("beta", "ana@fleetguard.example", "/users/ana%40fleetguard%2Eexample/devices/" + GUID),
])
def test_device_addresses(version, user, path):
    assert DeviceAddress(version, user).by_id(GUID) == path


def test_the_alternate_key_is_a_quoted_literal():
    assert DeviceAddress().by_device_id(GUID) == "/devices(deviceId='%s')" % GUID
    assert DeviceAddress("beta", "me").by_device_id(GUID) is None


@pytest.mark.parametrize("bad", ["../x", "a/b", GUID + "/../../users", GUID + "?x=1", "", "' or 1 eq 1"])
def test_ids_must_be_guids(bad):
    with pytest.raises(InputError):
        DeviceAddress().by_id(bad)
    with pytest.raises(InputError):
        DeviceAddress().by_device_id(bad)


@pytest.mark.parametrize("user", ["../me", "a b@c", "x/y@z", "not a user", "me/devices"])
def test_users_are_me_a_guid_or_a_upn(user):
    with pytest.raises(InputError):
        DeviceAddress("beta", user)


def test_user_needs_beta():
    with pytest.raises(InputError):
        DeviceAddress("v1.0", "me")


def test_extension_attributes_are_normalised_and_checked():
    assert normalize_extension_attributes({"EXTENSIONATTRIBUTE1": "a", "extensionAttribute15": None}) == {
        "extensionAttribute1": "a", "extensionAttribute15": None}
    for bad in ({"extensionAttribute0": "a"}, {"extensionAttribute16": "a"}, {"foo": "a"},
                {"extensionAttribute1": 1}, {"extensionAttribute1": True}, {"extensionAttribute1": "x" * 1025}):
        with pytest.raises(InputError):
            normalize_extension_attributes(bad)
    assert normalize_extension_attributes({"extensionAttribute1": "x" * 1024})


def test_rome_properties_are_only_desired_with_beta_and_a_user():
    params = dict(account_enabled=False, name="n", kind="Phone", user=None)
    assert desired_properties(params, "beta") == {"accountEnabled": False}
    params["user"] = "me"
    assert desired_properties(params, "beta") == {"accountEnabled": False, "name": "n", "kind": "Phone"}


@pytest.mark.parametrize("operating_system, side", [
    ("Windows", WINDOWS),
    ("Android", NOT_WINDOWS), ("iOS", NOT_WINDOWS), ("MacMDM", NOT_WINDOWS), ("Linux", NOT_WINDOWS),
    ("Windows Server", UNDOCUMENTED), ("windows", UNDOCUMENTED), ("WindowsPhone", UNDOCUMENTED),
    (None, UNDOCUMENTED), ("", UNDOCUMENTED), ("  ", UNDOCUMENTED), (7, UNDOCUMENTED),
])
def test_graphs_app_only_rule_places_only_documented_operating_systems(operating_system, side):
    assert windows_class(operating_system) == side
