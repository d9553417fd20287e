# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""Desired-versus-current comparison, shared by every module.

Only the fields the user set are managed: a field left out of `desired` is never compared, never
written and never shown in a diff. Nested dicts (Graph's extensionAttributes) are compared key by
key, and a key that is missing on the server equals None, so "clear it" on a cleared value is no change.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy


def changed_fields(current, desired, fold=None):
    """The part of `desired` that differs from `current` (same shape as `desired`; empty: no change).

    `fold(value)` puts both sides in the form the API stores, for APIs that fold values (Graph stores an
    empty extension attribute as null): values equal once folded are no change.
    """
    current = current or {}
    fold = fold or (lambda value: value)
    delta = {}
    for key, wanted in desired.items():
        have = current.get(key)
        if isinstance(wanted, dict):
            nested = changed_fields(have if isinstance(have, dict) else {}, wanted, fold)
            if nested:
                delta[key] = nested
        elif fold(wanted) != fold(have):
            delta[key] = wanted
    return delta


def apply_changes(current, delta):
    """The object as it will be once `delta` is written (a new dict; nested dicts merged key by key)."""
    predicted = copy.deepcopy(current or {})
    for key, value in delta.items():
        if isinstance(value, dict):
            base = predicted.get(key)
            predicted[key] = apply_changes(base if isinstance(base, dict) else {}, value)
        else:
            predicted[key] = value
    return predicted


def managed_view(obj, desired):
    """Project `obj` onto the keys of `desired` (recursively): what a diff shows."""
    obj = obj or {}
    view = {}
    for key, wanted in desired.items():
        have = obj.get(key)
        if isinstance(wanted, dict):
            view[key] = managed_view(have if isinstance(have, dict) else {}, wanted)
        else:
            view[key] = have
    return view


def diff_entry(before, after, before_header, after_header=None):
    """One entry of Ansible's `diff` list, the shape the callbacks render."""
    return dict(before=before, after=after, before_header=before_header,
                after_header=after_header if after_header is not None else before_header)
