# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""The filters of the Feishu device-record list endpoint, checked before any request.

Shared by feishu_device_record_info and the feishu_device_records inventory plugin: enum filters take
the names this collection uses (or the API's integers), booleans must be booleans, and an unknown
filter name is refused instead of being sent and silently ignored.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import InputError, shown
from ansible_collections.fleetguard.devices.plugins.module_utils.feishu_records import (
    DEVICE_OWNERSHIP,
    DEVICE_STATUS,
    DEVICE_SYSTEM,
    DEVICE_TERMINAL_TYPE,
)

# List filters that take an enum, by filter name (the `os` filter matches the record's device_system).
ENUM_FILTERS = dict(device_status=DEVICE_STATUS, device_ownership=DEVICE_OWNERSHIP,
                    device_terminal_type=DEVICE_TERMINAL_TYPE, os=DEVICE_SYSTEM)

STRING_FILTERS = frozenset([
    "device_record_id", "current_user_id", "user_id_type", "device_name", "serial_number", "disk_serial_number",
    "mac_address", "android_id", "uuid", "idfv", "aaid", "latest_user_id", "did", "mdm_device_id",
    "mdm_provider_name", "cert_serial_number", "cert_issuer",
])
BOOL_FILTERS = frozenset(["is_managed", "is_public"])
INT_FILTERS = frozenset(["lsa_client_status", "device_env_detect_status", "source"])

# Only ASCII digits: str.isdigit() and int() also take other scripts' digits ("١", "５"), which the API does not.
ASCII_INTEGER = re.compile(r"-?[0-9]+")


def list_filters(filters):
    """Validate filters and put them in the form the list endpoint expects."""
    params = {}
    for name, value in (filters or {}).items():
        if value is None:
            continue
        if name in ENUM_FILTERS:
            params[name] = _enum_value(name, value, ENUM_FILTERS[name])
        elif name in BOOL_FILTERS:
            if not isinstance(value, bool):
                raise InputError("filter %s must be true or false, not %s" % (name, shown(value)))
            params[name] = "true" if value else "false"
        elif name in INT_FILTERS:
            params[name] = _integer(value)
            if params[name] is None:
                raise InputError("filter %s must be an integer, not %s" % (name, shown(value)))
        elif name in STRING_FILTERS:
            params[name] = str(value)
        else:
            known = sorted(set(ENUM_FILTERS) | BOOL_FILTERS | INT_FILTERS | STRING_FILTERS)
            raise InputError("unknown filter %s; the list endpoint accepts %s" % (shown(name), ", ".join(known)))
    return params


def _integer(value):
    """The integer an option value stands for (an int, or a string of ASCII digits), else None.

    A boolean is an int to Python but never a filter value, and a float would be cut silently."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and ASCII_INTEGER.fullmatch(value):
        return int(value)
    return None


def _enum_value(name, value, names):
    if isinstance(value, str) and value.lower() in names:
        return names[value.lower()]
    if _integer(value) in names.values():
        return _integer(value)
    raise InputError("filter %s must be one of %s, not %s" % (name, ", ".join(names), shown(value)))
