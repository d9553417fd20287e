"""Which device properties a PATCH may change, and how: the checks of
https://learn.microsoft.com/en-us/graph/api/device-update?view=graph-rest-1.0 (writable properties,
the app-only rule for non-Windows devices) plus the Project Rome properties that the beta
user-scoped PATCH also takes (see sandbox/msgraph_devices.py).
"""

from sandbox.msgraph_data import (
    DISPLAY_NAME_MAX,
    EXTENSION_KEYS,
    EXTENSION_VALUE_MAX,
    ROME_ONLY,
    ROME_PROPERTIES,
    V1_PROPERTIES,
)
from sandbox.msgraph_gateway import INSUFFICIENT_PRIVILEGES
from sandbox.msgraph_query import ApiError, bad_request

BOOLEAN_WRITABLE = ("accountEnabled", "isCompliant", "isManaged")
STRING_WRITABLE = ("displayName", "operatingSystem", "operatingSystemVersion")
# Set by Intune; a PATCH of any of them is refused with 403, even for a Global Administrator
# (https://github.com/microsoftgraph/msgraph-sdk-powershell/issues/858).
INTUNE_OWNED = ("deviceOwnership", "enrollmentProfileName", "enrollmentType", "managementType", "deviceCategory",
                "isRooted")
# The beta "Update devices" draft page's example spells the Rome properties Name, Model, ...
ROME_ALIASES = {name.capitalize(): name for name in ROME_PROPERTIES}
# The 400 app-only callers get on non-Windows devices, as reported in
# https://github.com/microsoftgraph/microsoft-graph-docs/issues/15707.
NON_WINDOWS = "Properties other than ExtendedAttribute1..15 can be modified only on windows devices."
# The one operatingSystem value the rule names ("where the operatingSystem property is not Windows"). Graph
# documents no other spelling ("Windows Server", "windows") nor a device without one, so the emulator reads
# the rule literally and refuses them all.
WINDOWS = "Windows"


def checked_changes(changes, device, caller, rome):
    """Validate a PATCH body against the device and the caller: bad or read-only keys → 400,
    Intune-owned keys → 403, app-only on non-Windows → 400. `rome` also allows the Rome properties."""
    changes = dict(changes)
    odata_type = changes.pop("@odata.type", "#microsoft.graph.device")
    if odata_type not in ("#microsoft.graph.device", "microsoft.graph.device"):
        raise bad_request(f"Invalid @odata.type '{odata_type}': expected '#microsoft.graph.device'.")
    if rome:
        changes = {ROME_ALIASES.get(key, key): value for key, value in changes.items()}
    for key, value in changes.items():
        if key in INTUNE_OWNED:
            continue
        if key in BOOLEAN_WRITABLE + STRING_WRITABLE + ("extensionAttributes",) or (rome and key in ROME_PROPERTIES):
            check_value(key, value)
        elif key in V1_PROPERTIES + ROME_ONLY:
            raise bad_request(f"Property '{key}' is read-only and cannot be set.")
        else:
            raise bad_request(f"Property '{key}' does not exist as a declared property or extension property.")
    if any(key in INTUNE_OWNED for key in changes):
        raise ApiError(403, "Authorization_RequestDenied", INSUFFICIENT_PRIVILEGES)
    exempt = ("extensionAttributes",) + (ROME_PROPERTIES if rome else ())
    if caller.app and device.get("operatingSystem") != WINDOWS:
        if any(key not in exempt for key in changes):
            raise bad_request(NON_WINDOWS)
    return changes


def check_value(key, value):
    invalid = bad_request(f"Invalid value specified for property '{key}' of resource 'Device'.")
    if key in BOOLEAN_WRITABLE:
        valid = isinstance(value, bool)
    elif key == "extensionAttributes":
        valid = isinstance(value, dict)
        if valid:
            check_extension_attributes(value)
    elif key in STRING_WRITABLE:
        valid = isinstance(value, str) and bool(value.strip())
        valid = valid and not (key == "displayName" and len(value) > DISPLAY_NAME_MAX)
    else:  # Rome properties: strings or null
        valid = value is None or isinstance(value, str)
    if not valid:
        raise invalid


def check_extension_attributes(value):
    for name, text in value.items():
        if name not in EXTENSION_KEYS:
            raise bad_request(f"Property '{name}' does not exist as a declared property or extension property "
                              "of 'extensionAttributes'.")
        if text is not None and not isinstance(text, str):
            raise bad_request(f"Invalid value specified for property '{name}' of resource 'Device'.")
        if text is not None and len(text) > EXTENSION_VALUE_MAX:
            raise bad_request(f"Invalid value specified for property '{name}' of resource 'Device': longer "
                              f"than {EXTENSION_VALUE_MAX} characters.")


def apply_changes(device, changes):
    for key, value in changes.items():
        if key == "extensionAttributes":
            for name, text in value.items():
                device["extensionAttributes"][name] = text or None  # the directory keeps no empty strings
        else:
            device[key] = value
