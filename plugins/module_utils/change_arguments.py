# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""The arguments of the change sources (extensions/eda): checked as the modules check their options.

ansible-rulebook hands a source its arguments as a plain dict, with no argument spec: this file applies the option
tables (options.py plus `source_options()`) to it, with the modules' environment fallbacks.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.common.validation import (
    check_type_bool,
    check_type_float,
    check_type_int,
    check_type_list,
    check_type_path,
    check_type_str,
)
from ansible.module_utils.errors import AnsibleFallbackNotFound

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import InputError, shown
from ansible_collections.fleetguard.devices.plugins.module_utils.options import non_empty_env_fallback

INITIAL_CHOICES = ("skip", "emit")
CHECKERS = dict(bool=check_type_bool, int=check_type_int, float=check_type_float, str=check_type_str,
                path=check_type_path, list=check_type_list)


def source_options(interval_minimum):
    """The arguments every change source takes besides its API's connection options."""
    return {
        "interval": dict(type="int", default=60, minimum=interval_minimum),
        "state_file": dict(type="path"),
        "initial": dict(type="str", default="skip", choices=list(INITIAL_CHOICES)),
        "properties": dict(type="list"),
    }


def source_arguments(args, table, source):
    """The source's arguments, checked: types, choices and bounds as the option tables say, connection options
    from their environment variables when not given (the modules' fallbacks). Unknown names are refused.
    Raises InputError naming the argument; the message never repeats the value of a secret."""
    args = dict((name, value) for name, value in (args or {}).items() if not name.startswith("eda_"))
    unknown = sorted(set(args) - set(table))
    if unknown:
        raise InputError("%s does not take the argument(s) %s; it takes %s" % (
            source, ", ".join(unknown), ", ".join(sorted(table))))
    params = {}
    for name, option in table.items():
        value = args.get(name)
        if value is None and option.get("env"):
            try:
                value = non_empty_env_fallback(*option["env"])
            except AnsibleFallbackNotFound:
                value = None
        if value is None:
            params[name] = option.get("default")
            continue
        params[name] = _checked(source, name, option, value)
    return params


def _checked(source, name, option, value):
    shown_value = "the given value" if option.get("no_log") else shown(value)
    try:
        value = CHECKERS[option["type"]](value)
    except (TypeError, ValueError):
        raise InputError("%s: %s must be of type %s, not %s" % (source, name, option["type"], shown_value))
    if option.get("choices") and value not in option["choices"]:
        raise InputError("%s: %s must be one of %s, not %s" % (source, name, ", ".join(option["choices"]), shown_value))
    if option.get("minimum") is not None and value < option["minimum"]:
        raise InputError("%s: %s must be at least %s seconds, not %s" % (source, name, option["minimum"], shown_value))
    return value


def property_names(source, names, known=None):
    """The `properties` argument as the source tracks it: each name once, in the given order, spelled as the API
    spells it when `known` ({lower-case name: API name}) is given. An empty list is no list (the default).
    Raises InputError naming every name that is not a string or (with `known`) not one of the API's."""
    if not names:
        return None
    bad = [name for name in names if not isinstance(name, str) or not name.strip()]
    if bad:
        raise InputError("%s: properties must be names, not %s" % (source, ", ".join(shown(name) for name in bad)))
    if known is not None:
        unknown = [name for name in names if name.strip().lower() not in known]
        if unknown:
            raise InputError("%s: %s %s not a property the source can track; it tracks %s" % (
                source, ", ".join(unknown), "is" if len(unknown) == 1 else "are", ", ".join(sorted(known.values()))))
        names = [known[name.strip().lower()] for name in names]
    unique = []
    for name in names:
        if name not in unique:
            unique.append(name)
    return unique
