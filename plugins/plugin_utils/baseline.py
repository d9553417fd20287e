# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""Audit baselines: a CSV file read into entries, and each entry checked and planned (what the filters
baseline_csv, baseline_plan and declared_posture share)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import csv
import io
import json
import re

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible_collections.fleetguard.devices.plugins.module_utils.errors import shown_json
from ansible_collections.fleetguard.devices.plugins.module_utils.feishu_records import DEVICE_OWNERSHIP, DEVICE_STATUS
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_properties import EXTENSION_ATTRIBUTES, V1_PROPERTIES
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_properties import IDENTITY_FIELDS as MSGRAPH_IDENTIFIERS
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_odata import guid_key
from ansible_collections.fleetguard.devices.plugins.plugin_utils.identifiers import described, trimmed

# The identifier options of the write modules, per directory, in the order error messages name them.
FEISHU_IDENTIFIERS = ("device_record_id", "serial_number", "device_name")

# What a baseline entry may ask of a Feishu record: the enum fields the module manages, by name.
FEISHU_DESIRED = {"device_status": list(DEVICE_STATUS), "device_ownership": list(DEVICE_OWNERSHIP)}

# What it may ask of a Graph device: every property the module sets, except a rename (in a baseline,
# display_name identifies the device). V1_PROPERTIES names the properties, not their types: the module
# documents these three as booleans; every other one but extension_attributes is a string.
_NOT_COMPARED = ("new_display_name", "extension_attributes")
_BOOLEAN_OPTIONS = ("account_enabled", "is_compliant", "is_managed")
MSGRAPH_BOOLEANS = tuple(option for option in V1_PROPERTIES if option in _BOOLEAN_OPTIONS)
MSGRAPH_STRINGS = tuple(option for option in V1_PROPERTIES if option not in _NOT_COMPARED + _BOOLEAN_OPTIONS)
MSGRAPH_DESIRED = MSGRAPH_BOOLEANS + MSGRAPH_STRINGS + ("extension_attributes",)

KNOWN_FIELDS = frozenset(
    ("name",) + FEISHU_IDENTIFIERS + MSGRAPH_IDENTIFIERS + tuple(FEISHU_DESIRED) + MSGRAPH_DESIRED + tuple(EXTENSION_ATTRIBUTES))

# Where the CSV reader keeps the cells of a row beyond the header's columns ({"line": 4, "columns": 2,
# "cells": [...]}), so that the plan refuses the row, naming its line, instead of the reader dropping them.
EXTRA_CELLS = "_extra_cells"

# How a baseline (a CSV cell in particular) spells a boolean, and an empty extension attribute.
TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")
EMPTY_WORDS = ("", "null", "~")

# A line a CSV baseline skips between rows: blank, or a comment.
_SKIPPED_LINE = re.compile(r"\s*(#.*)?\Z")


# --- CSV -----------------------------------------------------------------------------------------------------


def csv_rows(text):
    """A CSV baseline as a list of row mappings (every value a string), read by Python's csv module.

    The first row that is not empty names the columns: each once, none empty but those at its end (a spreadsheet
    ends every line with a comma), which are no columns. A quoted field may hold commas, doubled quotes and line
    breaks; a quote never closed, or text after a closing quote, is refused with its line (the reader would merge
    the rows that follow into one cell). Blank lines and lines starting with # between rows are skipped, and so
    are rows whose cells are all empty. A row with more non-empty cells than the header has columns keeps them
    under EXTRA_CELLS, with the line the row starts on.
    """
    if not isinstance(text, str):
        raise AnsibleFilterError("baseline_csv: expected the text of a CSV file, not %s" % described(text))
    if "\x00" in text:
        raise AnsibleFilterError("baseline_csv: CSV line %d holds a NUL character (is the file UTF-16, or no text?):"
                                 " save it as UTF-8 CSV" % _line_of(text, text.index("\x00")))
    lines = _Lines(text[1:] if text.startswith("\ufeff") else text)
    header = None
    rows = []
    try:
        records = list(_records(lines))
    except csv.Error as exc:
        raise AnsibleFilterError("baseline_csv: CSV line %d cannot be read: %s" % (lines.number, exc))
    for start, record in records:
        cells = [trimmed(cell) for cell in record]
        if not any(cells):
            continue
        if header is None:
            header = _header(start, cells)
            continue
        row = dict(zip(header, cells))
        extra = [cell for cell in cells[len(header):] if cell]
        if extra:
            row[EXTRA_CELLS] = {"line": start, "columns": len(header), "cells": extra}
        rows.append(row)
    return rows


def _line_of(text, index):
    return text.count("\n", 0, index) + 1 if "\n" in text else text.count("\r", 0, index) + 1


def _header(line, cells):
    """The column names of a header row (its empty cells at the end dropped), or the error that refuses it."""
    while not cells[-1]:
        cells = cells[:-1]
    first_column = {}
    for column, name in enumerate(cells, 1):
        if not name:
            raise AnsibleFilterError("baseline_csv: CSV line %d: column %d of the header has no name" % (line, column))
        if name == EXTRA_CELLS:
            raise AnsibleFilterError("baseline_csv: CSV line %d: %s cannot be a column name" % (line, EXTRA_CELLS))
        for character, separator in ((";", "semicolon"), ("\t", "tab")):
            if character in name:
                raise AnsibleFilterError("baseline_csv: CSV line %d: the column name %s holds a %s: the fields of a baseline"
                                         " are separated by commas" % (line, shown_json(name), separator))
        if name in first_column:
            raise AnsibleFilterError("baseline_csv: CSV line %d: the header names the column %s twice (columns %d and %d)"
                                     % (line, name, first_column[name], column))
        first_column[name] = column
    return cells


def _records(lines):
    """(the line a record starts on, its cells) for each record of the CSV text."""
    for record in csv.reader(lines, skipinitialspace=True):
        yield lines.record_start, record
        lines.at_record_start = True


# How the quotes of a record stand at a character: between fields, in an unquoted field, in a quoted field, just
# after a quote of a quoted field (its end, or the first of a doubled quote), in the blanks after its end.
_FIELD_START, _UNQUOTED, _QUOTED, _QUOTE, _AFTER_QUOTE = range(5)


class _Lines:
    """The lines of a CSV text for csv.reader, without the blank and comment lines between records: a line inside
    a quoted field is data, whatever it starts with. Line ends are LF: CRLF and a lone CR (old Mac files) become
    one. Each line is checked for what csv.reader reads without a word: a quoted field never closed (it takes the
    rest of the file), and text after a closing quote (it joins the field)."""

    def __init__(self, text):
        self.lines = io.StringIO(text.replace("\r\n", "\n").replace("\r", "\n"), newline="")
        self.number = 0
        self.record_start = 0
        self.at_record_start = True
        self.state = _FIELD_START
        self.quote_line = 0

    def __iter__(self):
        return self

    def __next__(self):
        while True:
            try:
                line = next(self.lines)
            except StopIteration:
                if self.state == _QUOTED:
                    raise AnsibleFilterError("baseline_csv: CSV line %d: the quoted field that starts here is never closed"
                                             % self.quote_line)
                raise
            self.number += 1
            if not self.at_record_start:
                return self._checked(line)
            if not _SKIPPED_LINE.match(line.rstrip("\n")):
                self.at_record_start = False
                self.record_start = self.number
                self.state = _FIELD_START
                return self._checked(line)

    def _checked(self, line):
        for character in line:
            self.state = self._next_state(character)
        if self.state != _QUOTED:
            self.state = _FIELD_START
        return line

    def _next_state(self, character):
        state = self.state
        if state == _QUOTED:
            return _QUOTE if character == '"' else _QUOTED
        if character in ",\n":
            return _FIELD_START
        if state == _FIELD_START:
            if character == '"':
                self.quote_line = self.number
                return _QUOTED
            return _FIELD_START if character == " " else _UNQUOTED
        if state == _QUOTE and character == '"':
            return _QUOTED
        if state in (_QUOTE, _AFTER_QUOTE):
            if character not in " \t":
                raise AnsibleFilterError("baseline_csv: CSV line %d: text after the closing quote of a field (%s): a quote"
                                         " inside a field is doubled, and the whole field quoted" % (self.number, character))
            return _AFTER_QUOTE
        return state


# --- entries -------------------------------------------------------------------------------------------------


def _extra_cells_problem(extra):
    """What is wrong with a CSV row that has more cells than the header has columns."""
    if not isinstance(extra, Mapping):
        extra = {"cells": extra}
    cells = extra.get("cells")
    cells = list(cells) if isinstance(cells, (list, tuple)) else [cells]
    where = "CSV line %s: " % extra["line"] if extra.get("line") is not None else ""
    columns = "the header's %s column(s)" % extra["columns"] if extra.get("columns") is not None else "the header's columns"
    return "%s%d cell(s) beyond %s: %s" % (where, len(cells), columns, shown_json(cells))


def _given_fields(raw, problems):
    """The fields an entry sets: strings trimmed, empty values dropped (except null extension attributes)."""
    given = {}
    for key, value in raw.items():
        if key == EXTRA_CELLS:
            problems.append(_extra_cells_problem(value))
        elif key not in KNOWN_FIELDS:
            problems.append("unknown field %s" % key)
        elif value is not None and not (isinstance(value, str) and value.strip() == ""):
            given[key] = value.strip() if isinstance(value, str) else value
        elif key in EXTENSION_ATTRIBUTES and value is None:
            given[key] = None
    return given


def _feishu_desired(given, desired, problems):
    """Fill `desired` from the Feishu fields of `given`; return the Graph fields it holds too."""
    for key, names in FEISHU_DESIRED.items():
        if key in given:
            name = str(given[key]).lower()
            if name in names:
                desired[key] = name
            else:
                problems.append("%s must be one of %s, not %s" % (key, ", ".join(names), given[key]))
    return [key for key in MSGRAPH_DESIRED + tuple(EXTENSION_ATTRIBUTES) if key in given]


def _boolean(value):
    """A baseline's boolean (true, or text such as "yes" or "0"), or None when it is none."""
    if isinstance(value, bool):
        return value
    word = str(value).lower()
    return True if word in TRUE_WORDS else False if word in FALSE_WORDS else None


def _msgraph_desired(given, desired, problems):
    """Fill `desired` from the Graph fields of `given`; return the Feishu fields it holds too."""
    for key in MSGRAPH_BOOLEANS:
        if key in given:
            value = _boolean(given[key])
            if value is None:
                problems.append("%s must be true or false, not %s" % (key, given[key]))
            else:
                desired[key] = value
    for key in MSGRAPH_STRINGS:
        if key in given:
            desired[key] = str(given[key])
    attributes = _extension_attributes(given, problems)
    if attributes:
        desired["extension_attributes"] = attributes
    return [key for key in FEISHU_DESIRED if key in given]


def _extension_attributes(given, problems):
    """The extension attributes an entry asks for, nested (extension_attributes) or as fields of their own."""
    nested = given.get("extension_attributes", {})
    if not isinstance(nested, Mapping):
        problems.append("extension_attributes must be a mapping")
        nested = {}
    attributes = {}
    pairs = list(nested.items()) + [(key, value) for key, value in given.items() if key in EXTENSION_ATTRIBUTES]
    for key, value in pairs:
        if key not in EXTENSION_ATTRIBUTES:
            problems.append("extension attribute %s is not one of extensionAttribute1..15" % key)
        elif value is not None and not isinstance(value, str):
            # YAML's true would reach Graph as "True": a tag is text, so it must be written as text.
            problems.append("extension attribute %s must be a string or null, not %s" % (key, shown_json(value)))
        elif value is None or value.strip() in EMPTY_WORDS:
            attributes[key] = None
        else:
            attributes[key] = str(value)
    return attributes


def plan_entry(number, raw):
    """One numbered baseline entry: where to look, by which identifier, what to expect, what is wrong."""
    problems = []
    desired = {}
    if not isinstance(raw, Mapping):
        raw = {}
        problems.append("not a mapping of field names to values")
    given = _given_fields(raw, problems)
    identifiers = [key for key in FEISHU_IDENTIFIERS + MSGRAPH_IDENTIFIERS if key in given]
    if len(identifiers) != 1:
        problems.append("needs exactly one of %s (has %s)"
                        % (", ".join(FEISHU_IDENTIFIERS + MSGRAPH_IDENTIFIERS), ", ".join(identifiers) or "none"))
    field = identifiers[0] if identifiers else ""
    directory = "feishu" if field in FEISHU_IDENTIFIERS else "msgraph"
    if directory == "feishu":
        foreign = _feishu_desired(given, desired, problems)
    else:
        foreign = _msgraph_desired(given, desired, problems)
    if field and foreign:
        problems.append("%s cannot be checked on a %s device (found by %s)" % (", ".join(foreign), directory, field))
    if field and not desired and not problems:
        problems.append("no desired state to compare")
    return {"entry": number, "name": str(given.get("name", "")), "directory": directory if field else None,
            "field": field, "value": str(given[field]) if field else None, "desired": desired, "problems": problems}


def desired_pairs(desired):
    """A desired state as flat (field, value) pairs: each extension attribute is a field of its own."""
    pairs = dict((key, value) for key, value in desired.items() if key != "extension_attributes")
    pairs.update(desired.get("extension_attributes") or {})
    return pairs


def device_key(directory, field, value):
    """An identifier as its API compares it: Graph ids and deviceIds are GUIDs, equal whatever their case;
    Feishu record ids are digits, and names are compared exactly by both modules."""
    if directory == "msgraph" and field in ("id", "device_id"):
        return guid_key(value)
    return str(value)


# --- plan ----------------------------------------------------------------------------------------------------


def _flag_conflicts(entries):
    """Give a problem to each entry that asks a field of a device another entry asks differently.

    Two entries for the same identifier that agree (or set different fields) are fine; a device cannot be
    both trusted and untrusted, and comparing it both ways would report it drifted and in sync at once."""
    first_by_device = {}
    for entry in entries:
        if entry["problems"]:
            continue
        device = (entry["directory"], entry["field"], device_key(entry["directory"], entry["field"], entry["value"]))
        asked = desired_pairs(entry["desired"])
        for earlier in first_by_device.setdefault(device, []):
            before = desired_pairs(earlier["desired"])
            clashes = sorted(key for key in asked if key in before and before[key] != asked[key])
            for key in clashes:
                message = "%s %s=%s conflicts with entry %d, which asks %s for the same device" % (
                    entry["field"], key, shown_json(asked[key]), earlier["entry"], shown_json(before[key]))
                entry["problems"].append(message)
            if clashes:
                earlier["problems"].append("conflicts with entry %d (%s)" % (entry["entry"], ", ".join(clashes)))
        first_by_device[device].append(entry)


def plan(baseline):
    """A baseline (a list of entries, each a mapping) as the audit's plan: see the filter baseline_plan."""
    if not isinstance(baseline, (list, tuple)):
        raise AnsibleFilterError("baseline_plan: expected a list of baseline entries, not %s" % described(baseline))
    entries = [plan_entry(number, raw) for number, raw in enumerate(baseline, 1)]
    _flag_conflicts(entries)
    groups = {}
    group_devices = {}  # group key -> the devices it holds, as the API tells them apart
    for entry in entries:
        if entry["problems"]:
            continue
        key = "%s|%s|%s" % (entry["directory"], entry["field"], json.dumps(entry["desired"], sort_keys=True))
        group = groups.setdefault(key, {"key": key, "directory": entry["directory"], "field": entry["field"],
                                        "desired": copy.deepcopy(entry["desired"]), "ids": [], "entries": []})
        known = group_devices.setdefault(key, set())
        if device_key(entry["directory"], entry["field"], entry["value"]) not in known:
            known.add(device_key(entry["directory"], entry["field"], entry["value"]))
            group["ids"].append(entry["value"])
        group["entries"].append(entry["entry"])
    return {"entries": entries,
            "feishu_groups": [group for group in groups.values() if group["directory"] == "feishu"],
            "msgraph_groups": [group for group in groups.values() if group["directory"] == "msgraph"]}
