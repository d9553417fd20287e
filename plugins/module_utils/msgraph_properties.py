# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""The Graph device properties this collection knows: which module option sets which property, which ones a read
asks for, how identifiers name a device, and the checks a desired value passes before any request.

The module, the directory (msgraph_devices), the client's lookups and the filters all read them from here.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import InputError, shown

# The identity options of the modules, in the order error messages name them, and the property each one reads.
IDENTITY_FIELDS = ("id", "device_id", "display_name")
IDENTITY_PROPERTIES = dict(id="id", device_id="deviceId", display_name="displayName")

EXTENSION_ATTRIBUTES = ["extensionAttribute%d" % n for n in range(1, 16)]
EXTENSION_ATTRIBUTE_MAX = 1024
# displayName is required and at most 256 characters
# (https://learn.microsoft.com/en-us/graph/api/resources/device#properties).
DISPLAY_NAME_MAX = 256

# Module option -> Graph property, for the properties PATCH may set.
V1_PROPERTIES = dict(
    account_enabled="accountEnabled",
    new_display_name="displayName",
    operating_system="operatingSystem",
    operating_system_version="operatingSystemVersion",
    is_compliant="isCompliant",
    is_managed="isManaged",
    extension_attributes="extensionAttributes",
)
# Project Rome properties of the beta user-scoped collection
# (https://learn.microsoft.com/en-us/graph/api/resources/device?view=graph-rest-beta).
BETA_PROPERTIES = dict(name="name", manufacturer="manufacturer", model="model", kind="kind", status="status",
                       platform="platform")

# What a read asks for (`$select`): the managed properties and what reports show.
READ_PROPERTIES = ["id", "deviceId", "displayName", "accountEnabled", "operatingSystem", "operatingSystemVersion",
                   "isCompliant", "isManaged", "trustType", "profileType", "manufacturer", "model",
                   "registrationDateTime", "approximateLastSignInDateTime", "extensionAttributes"]
BETA_READ_PROPERTIES = READ_PROPERTIES + ["name", "kind", "status", "platform"]
# What the stale_devices role reads of each device (physicalIds for the Autopilot check).
STALE_CHECK_PROPERTIES = ["id", "deviceId", "displayName", "accountEnabled", "operatingSystem", "operatingSystemVersion",
                          "trustType", "profileType", "registrationDateTime", "approximateLastSignInDateTime", "physicalIds",
                          "extensionAttributes"]

# Graph's rule for app-only callers (https://learn.microsoft.com/en-us/graph/api/device-update): "In
# application-only scenarios and for non-Windows devices, that is, where the operatingSystem property is not
# Windows, the app can update only the extensionAttributes property."
APP_ONLY_ANY_OS = frozenset(["extensionAttributes"])
WINDOWS, NOT_WINDOWS, UNDOCUMENTED = "windows", "not_windows", "undocumented"


def windows_class(operating_system):
    """Which side of Graph's app-only rule a device's operatingSystem puts it on.

    WINDOWS: exactly the value the rule names. NOT_WINDOWS: a value that does not mention Windows (Android,
    iOS, MacMDM, Linux; Graph refuses these, as reported). UNDOCUMENTED: no value, or another spelling that
    mentions Windows ("Windows Server", "windows"): Graph does not say which side they are on, so nobody can
    predict its answer. The module, its check mode and the stale_devices filter all ask this one function.
    """
    if operating_system == "Windows":
        return WINDOWS
    if not isinstance(operating_system, str) or not operating_system.strip() or "windows" in operating_system.lower():
        return UNDOCUMENTED
    return NOT_WINDOWS


def extension_attribute_name(key):
    """The canonical name of an extension attribute however it is cased (EXTENSIONATTRIBUTE3 -> extensionAttribute3),
    or None when `key` names none."""
    return _EXTENSION_ATTRIBUTE_NAMES.get(str(key).strip().lower())


_EXTENSION_ATTRIBUTE_NAMES = dict((name.lower(), name) for name in EXTENSION_ATTRIBUTES)


def normalize_extension_attributes(value):
    """Canonical key names, string-or-null values, each at most 1024 characters; refused before any write."""
    if value is None:
        return None
    normalized = {}
    for key, attribute in value.items():
        name = extension_attribute_name(key)
        if name is None:
            raise InputError("extension_attributes key %s is not one of extensionAttribute1..extensionAttribute15" % shown(key))
        if attribute is not None and not isinstance(attribute, str):
            raise InputError("extension_attributes.%s must be a string or null, not %s" % (name, shown(attribute)))
        if attribute is not None and len(attribute) > EXTENSION_ATTRIBUTE_MAX:
            raise InputError("extension_attributes.%s is %d characters long; Graph allows at most %d"
                             % (name, len(attribute), EXTENSION_ATTRIBUTE_MAX))
        normalized[name] = attribute
    return normalized


def desired_properties(params, api_version):
    """The Graph properties the user set, from module options."""
    options = dict(V1_PROPERTIES)
    if api_version == "beta" and params.get("user"):
        options.update(BETA_PROPERTIES)
    desired = {}
    for option, prop in options.items():
        value = params.get(option)
        if value is None:
            continue
        desired[prop] = normalize_extension_attributes(value) if option == "extension_attributes" else value
    name = desired.get("displayName")
    if name is not None and not (0 < len(name) <= DISPLAY_NAME_MAX):
        # Refused here, so check mode fails as the real run would, before any request.
        raise InputError("new_display_name is %d characters long; Graph requires 1 to %d (%s)"
                         % (len(name), DISPLAY_NAME_MAX, shown(name)))
    if desired.get("extensionAttributes") == {}:
        del desired["extensionAttributes"]
    return desired
