# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""How the roles read a list input (identifiers, exclusions, scopes): a list, or survey text of one entry per
line or entries separated by commas. The filters identifier_list and stale_devices_settings both read it so."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import unicodedata

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.datatag import native_type_name
from ansible_collections.fleetguard.devices.plugins.module_utils.errors import shown_json


def described(value):
    """A value for an error message, with its type: 'a dict: {...}', or 'null'."""
    if value is None:
        return "null"
    return "%s: %s" % (kind(value), shown_json(value))


def kind(value):
    """A value's type alone for an error message ('a dict', 'a list', 'a str', 'null'), when its content must not
    be shown: a registered module result may carry anything."""
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "a dict"
    if isinstance(value, (list, tuple)):
        return "a list"
    return "a %s" % native_type_name(value)  # a str, not ansible-core's tagged str


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def identifier_list(value):
    """One identifier input of a role as a list of trimmed, non-empty, unique strings.

    A list is taken item by item; a string (what an AWX survey text field gives) is one identifier per line
    when it has line breaks (a name may hold a comma: "Smith, John's iPad"), and single-line text is split at
    commas; a number is one identifier; null, an empty string or an empty list give []. Exact duplicates
    are dropped, the first kept; values that differ only in case are two identifiers.
    """
    if value is None:
        return []
    if isinstance(value, str):
        # A comma left at a line's end ("a,\nb") is a separator, not part of the name.
        multi_line = "\n" in value or "\r" in value
        items = [trimmed(line, also=",") for line in value.splitlines()] if multi_line else value.split(",")
    elif is_number(value):
        items = [value]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise AnsibleFilterError("identifier_list: expected a list of identifiers, or one string of them separated by"
                                 " commas or new lines, not %s" % described(value))
    identifiers = []
    seen = set()
    for position, item in enumerate(items, 1):
        if is_number(item):
            item = str(item)
        elif not isinstance(item, str):
            raise AnsibleFilterError("identifier_list: item %d is not an identifier (a string or a number): %s"
                                     % (position, shown_json(item)))
        item = trimmed(item)
        # Exact comparison: the modules match identifiers exactly, and two Feishu device names that differ
        # only in case are two devices.
        if item and item not in seen:
            seen.add(item)
            identifiers.append(item)
    return identifiers


def trimmed(text, also=""):
    """`text` without white space, invisible format characters or characters in `also` at either end. Survey text pasted from a
    document or a spreadsheet can carry a byte-order mark or a zero-width space: kept, it would make a name
    that matches no device, and an exclusion that silently protects nothing."""
    start, end = 0, len(text)
    while start < end and (_blank(text[start]) or text[start] in also):
        start += 1
    while end > start and (_blank(text[end - 1]) or text[end - 1] in also):
        end -= 1
    return text[start:end]


def _blank(character):
    return character.isspace() or unicodedata.category(character) == "Cf"
