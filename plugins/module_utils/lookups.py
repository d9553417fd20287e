# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""Identity options shared by the modules: which one was given, and whether each value named exactly one object.

A lookup that matches nothing or more than one object fails the whole task before any write, naming
every such value and, when ambiguous, the candidates (netbox's rule: one object or fail).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import InputError, LookupFailure, shown


def identity(params, fields):
    """(field, values) of the identity option given (the module's argument spec makes it exactly one);
    empty strings are dropped, an empty list refused."""
    field = next(name for name in fields if params.get(name) is not None)
    values = [value for value in params[field] if value not in (None, "")]
    if not values:
        raise InputError("%s is empty: give at least one value" % field)
    return field, values


def check_matches(field, values, matches, state, id_key, noun, hints=None):
    """Raise LookupFailure naming every value that matched more than one object, or none (state=present:
    with state=absent, nothing found means already absent)."""
    problems = []
    for value in values:
        candidates = matches.get(value) or []
        if len(candidates) > 1:
            problems.append(dict(field=field, value=value, reason="ambiguous",
                                 candidates=[str(obj[id_key]) for obj in candidates]))
        elif not candidates and state == "present":
            problems.append(dict(field=field, value=value, reason="missing", candidates=[]))
    if problems:
        described = []
        for problem in problems:
            if problem["reason"] == "missing":
                near = (hints or {}).get(problem["value"])
                suggestion = " (did you mean %s?)" % " or ".join(near) if near else ""
                described.append("%s=%s matches no %s%s" % (problem["field"], shown(problem["value"]), noun, suggestion))
            else:
                described.append("%s=%s matches %d %ss (%s)" % (problem["field"], shown(problem["value"]),
                                                                len(problem["candidates"]), noun,
                                                                ", ".join(problem["candidates"])))
        raise LookupFailure("nothing was changed: " + "; ".join(described), problems=problems)


def unique_targets(values, matches, id_key):
    """The objects the values resolved to, each once, in first-seen order (a device named twice is acted on once)."""
    targets, seen = [], set()
    for value in values:
        for obj in matches[value]:
            if obj[id_key] not in seen:
                seen.add(obj[id_key])
                targets.append(obj)
    return targets
