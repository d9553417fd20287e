"""The bad-input corpus: what a careless user, an attacker and a broken server send, through real ansible-playbook
against the emulators (and small recorders) on 127.0.0.1, and the edge-case defects that a playbook can show.

Every case of a table below is one task of one ansible-playbook run per table (start-up dominates, so a table
is one run). Each case must fail with a clear message that names the bad value (cut, never echoed whole, when it
is long), with no traceback, and the emulator must have received no write for it. A case with `faults` gets an
emulator of its own, so its wire log is its own. Malformed answers come from the emulators' `answer` fault
(sandbox/README.md); a redirect points at a recorder that must never be reached; an empty environment variable
that selects the public default endpoint is sent through a recording proxy that lets nothing through, so no
test ever contacts an address other than 127.0.0.1.
"""

import datetime
import email.utils
import json
import os
import re
import ssl
import subprocess
import sys
import textwrap
import time

import pytest
import yaml

from sandbox.feishu import FeishuSandbox
from sandbox.msgraph import GraphSandbox
from sandbox.server import SandboxHTTPServer
from tests.ansible_output import plain

# The sizes and seeds of the `feishu` and `graph` fixtures: an emulator of a case's own holds the same ids.
FEISHU_FLEET = dict(records=60, seed=7)
GRAPH_FLEET = dict(devices=120, seed=11)
RECORDS_PATH = "/open-apis/security_and_compliance/v2/device_records"
LIST_CALL = {"method": "GET", "path_regex": re.escape(RECORDS_PATH) + "$"}
FEISHU_TOKEN_CALL = {"method": "POST", "path_regex": r"/tenant_access_token/internal$"}
GRAPH_TOKEN_CALL = {"method": "POST", "path_regex": r"/oauth2/v2\.0/token$"}
GRAPH_PAGE_CALL = {"method": "GET", "path_regex": r"^/v1\.0/devices$"}
GRAPH_BATCH_CALL = {"method": "POST", "path_regex": r"/\$batch$", "batch_item": False}
GRAPH_GET_PART = {"method": "GET", "batch_item": True}
HTML_PAGE = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
# A message longer than this is not "clear"; one that repeats a value of LONG or more characters is not cut.
MESSAGE_MAX = 1500
LONG = 1000
NOT_A_RECORD_ID = r"is not a Feishu device record id"
NOT_A_GUID = r"is not a GUID"
# What ansible-core shows when a module raised instead of failing cleanly.
NO_TRACE = ("Traceback (most recent call last)", "MODULE FAILURE", "module_stderr", "Module failed:")
WRITE_METHODS = ("PUT", "PATCH", "DELETE")


def quoted(value):
    """A pattern for a value as the collection's messages show it (Python repr, cut at 80 characters)."""
    return re.escape(repr(value)[:60])


def arabic(text):
    """The digits of `text` as Arabic-Indic digits (str.isdigit() says yes, [0-9] says no)."""
    return text.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))


class Case:
    """One bad input: a task, what its message must say, and what must have happened on the wire."""

    def __init__(self, name, module, args, expect=(), reject=(), env=None, faults=None, check=False, succeed=False,
                 connect=True, no_request=False, verify=None):
        self.name = name
        self.module = module
        self.api = "feishu" if module.startswith("feishu") else "graph"
        self.args = args
        self.expect = expect  # patterns the message must match (re.search)
        self.reject = reject  # patterns it must not match
        self.env = env  # the task's environment
        self.faults = faults  # fault rules: the case gets an emulator of its own
        self.check = check
        self.succeed = succeed  # an input that must be accepted (an empty injected variable means "not set")
        self.connect = connect  # point the task at the emulator (base_url, graph_endpoint, authority_host)
        self.no_request = no_request  # refused before any request: an emulator of its own must see none
        self.verify = verify  # verify(result, sandbox) -> [problem]: what else the case proves

    @property
    def own_sandbox(self):
        return self.faults is not None or self.no_request


class Fleet:
    """The ids of the generated directories, each handed to one case only, so a write names its case."""

    def __init__(self, feishu, graph):
        with feishu.lock:
            self.records = [dict(feishu.records[rid]) for rid in sorted(feishu.records, key=int)]
        with graph.lock:
            self.devices = [dict(graph.devices[oid]) for oid in sorted(graph.devices)]
        self.used = set()

    def _take(self, items, key, fields):
        for item in items:
            if item[key] not in self.used and all(item.get(name, 0) == value for name, value in fields.items()):
                self.used.add(item[key])
                return item
        raise AssertionError("the fleet has no more %s" % fields)

    def record(self, **fields):
        return self._take(self.records, "device_record_id", fields)["device_record_id"]

    def device(self, **fields):
        return self._take(self.devices, "id", fields)

    def windows(self):
        return self.device(operatingSystem="Windows")["id"]

    def ids(self):
        return [r["device_record_id"] for r in self.records] + [d["id"] for d in self.devices]


def connection(case, sandbox):
    if not case.connect:
        return {}
    if case.api == "feishu":
        return {"base_url": sandbox.url}
    return {"graph_endpoint": sandbox.url, "authority_host": sandbox.url}


def writes(sandbox):
    """Every write the emulator received: PUT, PATCH, DELETE (batch parts included), a $batch call carrying one,
    and a Feishu create."""
    found = []
    for entry in sandbox.wire.entries():
        body = entry.get("body")
        if entry["method"] in WRITE_METHODS:
            found.append(entry)
        elif entry["method"] == "POST" and entry["path"].endswith("$batch") and isinstance(body, dict) and any(
                isinstance(r, dict) and str(r.get("method", "")).upper() != "GET" for r in body.get("requests") or []):
            found.append(entry)
        elif entry["method"] == "POST" and entry["path"] == RECORDS_PATH:
            found.append(entry)
    return found


def long_values(value):
    """The strings of LONG or more characters in a task's arguments (dict keys included)."""
    if isinstance(value, str):
        return [value] if len(value) >= LONG else []
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in long_values(key) + long_values(item)]
    if isinstance(value, list):
        return [text for item in value for text in long_values(item)]
    return []


def cut(text, size=300):
    text = text or ""
    return text if len(text) <= size else text[:size] + "... (%d characters)" % len(text)


def judge(case, entry, sandbox, targets):
    """What is wrong with one case's outcome: [problem]."""
    if entry is None:
        return ["the task did not run"]
    result = entry["result"]
    message = result.get("msg") or ""
    text = json.dumps(result)
    problems = ["a traceback reached the user (%s)" % marker for marker in NO_TRACE if marker in text]
    if case.succeed and entry["status"] != "ok":
        problems.append("must be accepted, but failed: %s" % cut(message))
    elif not case.succeed:
        if entry["status"] != "failed":
            return problems + ["must fail, but ended %s (changed=%s)" % (entry["status"], result.get("changed"))]
        problems += refusal_problems(case, message)
    problems += request_problems(case, sandbox, targets)
    if case.verify is not None:
        problems.extend(case.verify(result, sandbox))
    return problems


def refusal_problems(case, message):
    """What is wrong with the message of a refusal: the patterns it must and must not match, its size, and long
    values repeated whole."""
    problems = ["the message lacks /%s/: %s" % (pattern, cut(message))
                for pattern in case.expect if not re.search(pattern, message)]
    problems += ["the message must not say /%s/: %s" % (pattern, cut(message))
                 for pattern in case.reject if re.search(pattern, message)]
    if len(message) > MESSAGE_MAX:
        problems.append("the message is %d characters long: %s" % (len(message), cut(message)))
    problems += ["the message repeats a %d-character value whole" % len(value)
                 for value in long_values(case.args) if value in message]
    return problems


def request_problems(case, sandbox, targets):
    """Writes to the case's devices, and any request at all when the input must be refused before one."""
    problems = []
    if case.own_sandbox:
        wrote = writes(sandbox)
    else:
        wrote = [e for e in writes(sandbox) if any(t in e["path"] or t in json.dumps(e.get("body")) for t in targets)]
    if wrote:
        problems.append("wrote: %s" % ["%s %s %s" % (e["method"], e["path"], e["status"]) for e in wrote])
    if case.no_request and len(sandbox.wire):
        problems.append("sent %d requests; the input is refused before any" % len(sandbox.wire))
    return problems


def case_sandbox(case, shared):
    """The emulator a case runs against: its own (with its faults) or the shared one of its API."""
    if not case.own_sandbox:
        return shared[case.api]
    sandbox = (FeishuSandbox(**FEISHU_FLEET) if case.api == "feishu" else GraphSandbox(**GRAPH_FLEET)).start()
    for rule in case.faults or []:
        sandbox.faults.add(**rule)
    return sandbox


def case_task(case, sandbox):
    args = dict(case.args)
    args.update(connection(case, sandbox))
    task = {"name": case.name, "fleetguard.devices." + case.module: args, "ignore_errors": True}
    if case.env is not None:
        task["environment"] = case.env
    if case.check:
        task["check_mode"] = True
    return task


def stray_writes(cases, shared, fleet_ids):
    """Writes to a shared emulator that no case's devices explain."""
    report = []
    for api, sandbox in shared.items():
        claimed = [e for case in cases if not case.own_sandbox and case.api == api for e in writes(sandbox)
                   if any(t in e["path"] for t in fleet_ids if t in json.dumps(case.args))]
        stray = [e for e in writes(sandbox) if e not in claimed]
        if stray:
            report.append("%s emulator: writes no case explains: %s" % (api, [(e["method"], e["path"]) for e in stray]))
    return report


def run_table(playbook, feishu, graph, cases, extra_env=None):
    """Run a table of cases in one ansible-playbook run; fail naming every case that went wrong."""
    names = [case.name for case in cases]
    assert len(set(names)) == len(names), "case names must be unique"
    shared = {"feishu": feishu, "graph": graph}
    fleet_ids = Fleet(feishu, graph).ids()
    sandboxes, tasks = {}, []
    try:
        for case in cases:
            sandboxes[case.name] = case_sandbox(case, shared)
            tasks.append(case_task(case, sandboxes[case.name]))
        run = playbook(yaml.safe_dump(tasks, allow_unicode=True, width=float("inf"), sort_keys=False),
                       module_defaults=False, extra_env=extra_env)
        results = dict((entry["task"], entry) for entry in run.results)
        report = []
        for case in cases:
            targets = [t for t in fleet_ids if t in json.dumps(case.args)]
            problems = judge(case, results.get(case.name), sandboxes[case.name], targets)
            if problems:
                report.append("%s: %s" % (case.name, "; ".join(problems)))
        report += stray_writes(cases, shared, fleet_ids)
    finally:
        for case in cases:
            if case.own_sandbox:
                sandboxes[case.name].stop()
    if report:
        pytest.fail("%d of %d cases went wrong:\n- %s" % (len(report), len(cases), "\n- ".join(report)), pytrace=False)
    return results


# --- the tables --------------------------------------------------------------------------------------------------


def feishu_input_cases(fleet):
    fr, fi = "feishu_device_record", "feishu_device_record_info"
    cases = []
    for label, suffix in (("a slash and a dot-segment", "/../x"), ("a query", "?version=1"), ("a fragment", "#x"),
                          ("an encoded slash", "%2F..%2F1"), ("encoded dots", "%2e%2e"), ("a space", " 1")):
        good = fleet.record(device_status=1)
        evil = fleet.record() + suffix
        cases.append(Case("feishu id with %s" % label, fr, {"device_record_id": [good, evil], "device_status": "untrusted"},
                          expect=(quoted(evil), NOT_A_RECORD_ID)))
    for label, evil in (("..", ".."), ("Arabic-Indic digits", arabic("7400000000000000003")),
                        ("fullwidth digits", "７４００００００００００００００００３"), ("superscript digits", "²³"),
                        ("65 digits", "1" * 65), ("a leading space", " 7400000000000000004")):
        good = fleet.record(device_status=1)
        cases.append(Case("feishu id of %s" % label, fr, {"device_record_id": [good, evil], "device_status": "untrusted"},
                          expect=(quoted(evil), NOT_A_RECORD_ID)))
    long_id = "7" * 10000
    cases += [
        Case("feishu id empty", fr, {"device_record_id": [""], "device_status": "untrusted"},
             expect=(r"device_record_id is empty",)),
        Case("feishu id of 10,000 digits", fr, {"device_record_id": [long_id], "device_status": "untrusted"},
             expect=(quoted(long_id), r"10000 characters", NOT_A_RECORD_ID)),
        Case("feishu device name of 10,000 characters", fr, {"device_name": ["x" * 10000], "device_status": "untrusted"},
             expect=(r"device_name='xxxxxxxxxx", r"10000 characters", r"matches no device record")),
        Case("feishu serial number of spaces", fr, {"serial_number": ["   "], "device_status": "untrusted"},
             expect=(r"serial_number='   '",)),
        Case("feishu unknown device_status", fr, {"device_record_id": [fleet.record()], "device_status": "quarantined"},
             expect=(r"device_status must be one of: unknown, trusted, untrusted, got: quarantined",)),
        Case("feishu unknown device_ownership", fr, {"device_record_id": [fleet.record()], "device_ownership": "corporate"},
             expect=(r"device_ownership.*corporate",)),
        Case("feishu unknown state", fr, {"device_record_id": [fleet.record()], "state": "deleted"},
             expect=(r"state.*deleted",)),
        Case("feishu device_status a list", fr, {"device_record_id": [fleet.record()], "device_status": ["untrusted"]},
             expect=(r"device_status.*untrusted",)),
        Case("feishu ids a dict", fr, {"device_record_id": {"a": 1}, "device_status": "untrusted"},
             expect=(r"device_record_id.*dict",)),
        Case("feishu unknown option", fr, {"device_record_id": [fleet.record()], "device_status": "untrusted",
                                           "colour": "red"},
             expect=(r"Unsupported parameters.*colour",)),
        Case("feishu state=absent with device_status", fr,
             {"device_record_id": [fleet.record()], "device_status": "untrusted", "state": "absent"},
             expect=(r"state=absent", r"cannot be combined", r"device_status")),
        Case("feishu state=absent with device_ownership", fr,
             {"serial_number": ["C02FG0001"], "device_ownership": "company", "state": "absent"},
             expect=(r"cannot be combined", r"device_ownership")),
        Case("feishu two identity options", fr, {"device_record_id": [fleet.record()], "serial_number": ["C02FG0002"],
                                                 "device_status": "untrusted"},
             expect=(r"mutually exclusive: device_record_id\|serial_number\|device_name",)),
        Case("feishu three identity options", fr, {"device_record_id": [fleet.record()], "serial_number": ["x"],
                                                   "device_name": ["y"], "device_status": "untrusted"},
             expect=(r"mutually exclusive",)),
        Case("feishu no identity option", fr, {"device_status": "untrusted"},
             expect=(r"one of the following is required: device_record_id, serial_number, device_name",)),
        Case("feishu nothing to set", fr, {"device_record_id": [fleet.record()]},
             expect=(r"device_status, device_ownership",)),
        Case("feishu timeout 0", fr, {"device_record_id": [fleet.record()], "device_status": "untrusted", "timeout": 0},
             expect=(r"timeout must be .*greater than 0, not 0",)),
        Case("feishu timeout negative", fr, {"device_record_id": [fleet.record()], "device_status": "untrusted",
                                             "timeout": -5},
             expect=(r"timeout .*not -5",)),
        Case("feishu timeout a word", fr, {"device_record_id": [fleet.record()], "device_status": "untrusted",
                                           "timeout": "soon"},
             expect=(r"argument 'timeout'",)),
        Case("feishu max_retries negative", fr, {"device_record_id": [fleet.record()], "device_status": "untrusted",
                                                 "max_retries": -3},
             expect=(r"max_retries must be 0 or more, not -3",)),
        Case("feishu max_retries a word", fr, {"device_record_id": [fleet.record()], "device_status": "untrusted",
                                               "max_retries": "many"},
             expect=(r"argument 'max_retries'",)),
        Case("feishu validate_certs not a boolean", fr, {"device_record_id": [fleet.record()], "device_status": "untrusted",
                                                         "validate_certs": "perhaps"},
             expect=(r"'perhaps' is not a valid boolean",)),
        Case("feishu base_url not a URL", fr, {"device_record_id": [fleet.record()], "device_status": "untrusted",
                                               "base_url": "not a url"},
             connect=False, expect=(r"not a url",)),
        Case("feishu base_url of another scheme", fr, {"device_record_id": [fleet.record()], "device_status": "untrusted",
                                                       "base_url": "ftp://127.0.0.1:1"},
             connect=False, expect=(r"ftp://127\.0\.0\.1:1",)),
        Case("feishu info id with dot-segments", fi, {"device_record_id": ["1/../2"]},
             expect=(quoted("1/../2"), NOT_A_RECORD_ID)),
        Case("feishu info ids and filters", fi, {"device_record_id": [fleet.record()], "filters": {"device_status": "trusted"}},
             expect=(r"mutually exclusive: device_record_id\|filters",)),
        Case("feishu info limit 0", fi, {"limit": 0}, expect=(r"limit", r"\b0\b")),
        Case("feishu info limit negative", fi, {"limit": -1}, expect=(r"limit", r"-1")),
        Case("feishu info unknown filter", fi, {"filters": {"colour": "red"}}, expect=(r"unknown filter 'colour'",)),
        Case("feishu info unknown status filter", fi, {"filters": {"device_status": "quarantined"}},
             expect=(r"filter device_status must be one of .*'quarantined'",)),
        Case("feishu info unknown os filter", fi, {"filters": {"os": "beos"}}, expect=(r"filter os .*'beos'",)),
        Case("feishu info boolean filter a word", fi, {"filters": {"is_managed": "perhaps"}},
             expect=(r"filter is_managed must be true or false, not 'perhaps'",)),
        Case("feishu info status filter of an Arabic-Indic digit", fi, {"filters": {"device_status": arabic("2")}},
             expect=(r"device_status", quoted(arabic("2")))),
        Case("feishu info integer filter a boolean", fi, {"filters": {"lsa_client_status": True}},
             expect=(r"lsa_client_status", r"True|true")),
        Case("feishu info filters a string", fi, {"filters": "notadict"}, expect=(r"argument 'filters'",)),
        Case("feishu info unknown option", fi, {"limt": 5}, expect=(r"Unsupported parameters.*limt",)),
    ]
    return cases


def graph_input_cases(fleet):
    gd, gi = "msgraph_device", "msgraph_device_info"
    cases = []
    for label, evil in (("dot-segments", "../../users"), ("a query", "%s?$select=id"), ("a fragment", "%s#x"),
                        ("encoded slashes", "%%2F..%%2F%s"), ("a leading space", " %s"),
                        ("Arabic-Indic digits", "ARABIC"), ("10,000 characters", "a" * 10000)):
        good, other = fleet.windows(), fleet.windows()
        evil = arabic(other) if evil == "ARABIC" else (evil % other if "%s" in evil else evil)
        expect = (quoted(evil), NOT_A_GUID) + ((r"10000 characters",) if len(evil) > LONG else ())
        cases.append(Case("graph id with %s" % label, gd, {"id": [good, evil], "account_enabled": False}, expect=expect))
    windows = fleet.device(operatingSystem="Windows")
    quote_name = "Bob' or displayName eq 'x"
    operator_name = "%s') or startswith(displayName,'FG" % windows["displayName"]
    long_text = "x" * 10000

    def filter_sent(literal):
        def verify(result, sandbox):
            sent = [e["query"].get("$filter") for e in sandbox.wire.entries(method="GET")]
            return [] if literal in sent else ["no $filter %r on the wire (got %s)" % (literal, [cut(s, 80) for s in sent])]
        return verify

    exact = fleet.device(operatingSystem="Windows")["displayName"]
    cases += [
        Case("graph id empty", gd, {"id": [""], "account_enabled": False}, expect=(r"id is empty",)),
        # An injected variable without its scheme; the authority is a closed local port, so nothing leaves 127.0.0.1.
        Case("graph graph_endpoint without a scheme", gd,
             {"id": [fleet.windows()], "account_enabled": False, "graph_endpoint": "graph.microsoft.com",
              "authority_host": "http://127.0.0.1:9"},
             connect=False, expect=(r"graph_endpoint 'graph\.microsoft\.com' is not an http\(s\) URL with a host",)),
        Case("graph device_id with dot-segments", gd, {"device_id": ["../x"], "account_enabled": False},
             expect=(quoted("../x"), NOT_A_GUID)),
        Case("graph device_id with an OData quote", gd, {"device_id": ["x') or (deviceId eq 'y"], "account_enabled": False},
             expect=(re.escape("x') or (deviceId eq 'y"), NOT_A_GUID)),
        Case("graph display name with an OData quote", gd, {"display_name": [quote_name], "account_enabled": False},
             expect=(re.escape(quote_name), r"matches no device"),
             verify=filter_sent("displayName eq 'Bob'' or displayName eq ''x'")),
        Case("graph display name with OData operators", gd, {"display_name": [operator_name], "account_enabled": False},
             expect=(re.escape(operator_name), r"matches no device"),
             verify=filter_sent("displayName eq '%s'" % operator_name.replace("'", "''"))),
        Case("graph display name of 10,000 characters", gd, {"display_name": [long_text], "account_enabled": False},
             expect=(r"display_name='xxxxxxxx", r"10000 characters", r"matches no device")),
        Case("graph display name in another case", gd, {"display_name": [exact.lower()], "account_enabled": False},
             expect=(re.escape(exact.lower()), r"did you mean %s\?" % re.escape(exact))),
        Case("graph new display name of 257 characters", gd, {"id": [fleet.windows()], "new_display_name": "y" * 257},
             expect=(r"new_display_name is 257 characters long; Graph requires 1 to 256", r"yyyyyyyy")),
        Case("graph new display name of 10,000 characters", gd, {"id": [fleet.windows()], "new_display_name": long_text},
             expect=(r"10000 characters",)),
        Case("graph new display name empty", gd, {"id": [fleet.windows()], "new_display_name": ""},
             expect=(r"new_display_name is 0 characters long",)),
        Case("graph extension attribute of 1,025 characters", gd,
             {"id": [fleet.windows()], "extension_attributes": {"extensionAttribute1": "z" * 1025}},
             expect=(r"extensionAttribute1 is 1025 characters long; Graph allows at most 1024",)),
        Case("graph extension attribute of 10,000 characters", gd,
             {"id": [fleet.windows()], "extension_attributes": {"extensionAttribute2": long_text}},
             expect=(r"extensionAttribute2 is 10000 characters long",)),
        Case("graph extension attribute 16", gd,
             {"id": [fleet.windows()], "extension_attributes": {"extensionAttribute16": "x"}},
             expect=(r"'extensionAttribute16' is not one of extensionAttribute1\.\.extensionAttribute15",)),
        Case("graph extension attribute key of 10,000 characters", gd,
             {"id": [fleet.windows()], "extension_attributes": {"k" * 10000: "x"}},
             expect=(r"'kkkkkkkk", r"10000 characters")),
        Case("graph extension attribute a number", gd,
             {"id": [fleet.windows()], "extension_attributes": {"extensionAttribute1": 5}},
             expect=(r"extensionAttribute1 must be a string or null, not 5",)),
        Case("graph extension attribute a list", gd,
             {"id": [fleet.windows()], "extension_attributes": {"extensionAttribute1": ["a"]}},
             expect=(r"must be a string or null, not \['a'\]",)),
        Case("graph extension attribute a boolean", gd,
             {"id": [fleet.windows()], "extension_attributes": {"extensionAttribute1": True}},
             expect=(r"must be a string or null, not True",)),
        Case("graph extension attributes a string", gd, {"id": [fleet.windows()], "extension_attributes": "notadict"},
             expect=(r"argument 'extension_attributes'",)),
        Case("graph account_enabled not a boolean", gd, {"id": [fleet.windows()], "account_enabled": "maybe"},
             expect=(r"'maybe' is not a valid boolean",)),
        Case("graph unknown api_version", gd, {"id": [fleet.windows()], "account_enabled": False, "api_version": "v2.0"},
             expect=(r"api_version must be one of: v1\.0, beta, got: v2\.0",)),
        Case("graph unknown auth_source", gd, {"id": [fleet.windows()], "account_enabled": False, "auth_source": "kerberos"},
             expect=(r"auth_source .*got: kerberos",)),
        Case("graph unknown tenant_size", gd, {"id": [fleet.windows()], "account_enabled": False, "tenant_size": "huge"},
             expect=(r"tenant_size .*got: huge",)),
        Case("graph unknown state", gd, {"id": [fleet.windows()], "state": "gone"}, expect=(r"state .*got: gone",)),
        Case("graph unknown option", gd, {"id": [fleet.windows()], "accountEnabled": False},
             expect=(r"Unsupported parameters.*accountEnabled",)),
        Case("graph state=absent with account_enabled", gd, {"id": [fleet.windows()], "account_enabled": False,
                                                             "state": "absent"},
             expect=(r"state=absent", r"cannot be combined", r"accountEnabled")),
        Case("graph state=absent with extension attributes", gd,
             {"id": [fleet.windows()], "extension_attributes": {"extensionAttribute15": "x"}, "state": "absent"},
             expect=(r"cannot be combined", r"extensionAttributes")),
        Case("graph state=absent with a new display name", gd, {"id": [fleet.windows()], "new_display_name": "x",
                                                                "state": "absent"},
             expect=(r"cannot be combined", r"displayName")),
        Case("graph two identity options", gd, {"id": [fleet.windows()], "display_name": ["x"], "account_enabled": False},
             expect=(r"mutually exclusive: id\|device_id\|display_name",)),
        Case("graph no identity option", gd, {"account_enabled": False},
             expect=(r"one of the following is required: id, device_id, display_name",)),
        Case("graph nothing to set", gd, {"id": [fleet.windows()]}, expect=(r"nothing to set",)),
        Case("graph Rome property without beta", gd, {"id": [fleet.windows()], "name": "x"},
             expect=(r"name can only be set with api_version beta and user",)),
        Case("graph Rome property with beta but no user", gd, {"id": [fleet.windows()], "kind": "Phone",
                                                               "api_version": "beta"},
             expect=(r"kind can only be set with api_version beta and user",)),
        Case("graph user without beta", gd, {"id": [fleet.windows()], "account_enabled": False, "user": "me"},
             expect=(r"user needs api_version beta",)),
        Case("graph user with dot-segments", gd, {"id": [fleet.windows()], "account_enabled": False, "user": "../../x",
                                                  "api_version": "beta"},
             expect=(quoted("../../x"), r"must be 'me', a user object id \(GUID\) or a user principal name")),
        Case("graph user with a space", gd, {"id": [fleet.windows()], "account_enabled": False, "user": "a b@c.example",
                                             "api_version": "beta"},
             expect=(quoted("a b@c.example"),)),
        Case("graph user of 10,000 characters", gd, {"id": [fleet.windows()], "account_enabled": False,
                                                     "user": "u" * 10000, "api_version": "beta"},
             expect=(r"'uuuuuuuu", r"10000 characters")),
        Case("graph timeout 0", gd, {"id": [fleet.windows()], "account_enabled": False, "timeout": 0},
             expect=(r"timeout must be .*greater than 0, not 0",)),
        Case("graph timeout negative", gd, {"id": [fleet.windows()], "account_enabled": False, "timeout": -1},
             expect=(r"timeout .*not -1",)),
        Case("graph max_retries negative", gd, {"id": [fleet.windows()], "account_enabled": False, "max_retries": -1},
             expect=(r"max_retries must be 0 or more, not -1",)),
        Case("graph tenant_id with dot-segments", gi, {"limit": 1, "tenant_id": "../../common"}, no_request=True,
             expect=(quoted("../../common"), r"tenant_id")),
        Case("graph tenant_id with a query", gi, {"limit": 1, "tenant_id": "contoso?p=1"}, no_request=True,
             expect=(quoted("contoso?p=1"), r"tenant_id")),
        Case("graph tenant_id with a fragment", gi, {"limit": 1, "tenant_id": "contoso#x"}, no_request=True,
             expect=(quoted("contoso#x"), r"tenant_id")),
        Case("graph tenant_id with encoded slashes", gi, {"limit": 1, "tenant_id": "%2F..%2Fcommon"}, no_request=True,
             expect=(quoted("%2F..%2Fcommon"), r"tenant_id")),
        Case("graph tenant_id of 10,000 characters", gi, {"limit": 1, "tenant_id": "t" * 10000}, no_request=True,
             expect=(r"'tttttttt", r"10000 characters", r"tenant_id")),
        Case("graph unknown cloud", gd, {"id": [fleet.windows()], "account_enabled": False, "cloud": "moon"},
             expect=(r"cloud 'moon' is not a national cloud",)),
        Case("graph info id with a slash", gi, {"id": ["a/b"]}, expect=(quoted("a/b"), NOT_A_GUID)),
        Case("graph info device_id not a GUID", gi, {"device_id": ["not-a-guid"]}, expect=(quoted("not-a-guid"), NOT_A_GUID)),
        Case("graph info unterminated filter", gi, {"filter": "displayName eq 'unterminated"},
             expect=(r"unterminated string literal", re.escape("displayName eq 'unterminated"),
                     r"request id [0-9a-f-]{36}")),
        Case("graph info ne filter without advanced_query", gi, {"filter": "accountEnabled ne true"},
             expect=(r"accountEnabled", r"advanced_query")),
        Case("graph info extension attribute filter without advanced_query", gi,
             {"filter": "extensionAttributes/extensionAttribute1 eq 'x'"}, expect=(r"advanced_query",)),
        Case("graph info filter of 10,000 characters", gi, {"filter": "displayName eq '" + long_text},
             expect=(r"displayName eq 'xxxx",)),
        Case("graph info limit negative", gi, {"limit": -1}, expect=(r"limit", r"-1")),
        Case("graph info ids and filter", gi, {"id": [fleet.windows()], "filter": "accountEnabled eq true"},
             expect=(r"mutually exclusive: id\|device_id\|display_name\|filter",)),
        Case("graph info select of an injected option", gi, {"select": ["displayName&$filter=x"], "limit": 1},
             expect=(re.escape("displayName&$filter=x"),)),
        Case("graph info user with dot-segments", gi, {"user": "../x", "api_version": "beta"}, expect=(quoted("../x"),)),
    ]
    return cases


def check_mode_cases(fleet):
    """Inputs the real run refuses are refused the same way, before any request, in check mode."""
    fr, gd = "feishu_device_record", "msgraph_device"
    return [
        Case("check: graph new display name of 257 characters", gd, {"id": [fleet.windows()], "new_display_name": "y" * 257},
             check=True, no_request=True, expect=(r"257 characters long; Graph requires 1 to 256",)),
        Case("check: graph new display name empty", gd, {"id": [fleet.windows()], "new_display_name": ""},
             check=True, no_request=True, expect=(r"0 characters long",)),
        Case("check: graph extension attribute of 1,025 characters", gd,
             {"id": [fleet.windows()], "extension_attributes": {"extensionAttribute3": "z" * 1025}},
             check=True, no_request=True, expect=(r"1025 characters long; Graph allows at most 1024",)),
        Case("check: graph state=absent with properties", gd, {"id": [fleet.windows()], "account_enabled": False,
                                                               "state": "absent"},
             check=True, no_request=True, expect=(r"cannot be combined",)),
        Case("check: graph id with dot-segments", gd, {"id": ["../../users"], "account_enabled": False},
             check=True, expect=(NOT_A_GUID,)),
        Case("check: graph timeout 0", gd, {"id": [fleet.windows()], "account_enabled": False, "timeout": 0},
             check=True, no_request=True, expect=(r"not 0",)),
        Case("check: feishu state=absent with device_status", fr,
             {"device_record_id": [fleet.record()], "device_status": "untrusted", "state": "absent"},
             check=True, no_request=True, expect=(r"cannot be combined",)),
        Case("check: feishu id with dot-segments", fr, {"device_record_id": [fleet.record() + "/../x"],
                                                        "device_status": "untrusted"},
             check=True, expect=(NOT_A_RECORD_ID,)),
        Case("check: feishu max_retries negative", fr, {"device_record_id": [fleet.record()], "device_status": "untrusted",
                                                        "max_retries": -3},
             check=True, no_request=True, expect=(r"not -3",)),
        Case("check: feishu unknown device_status", fr, {"device_record_id": [fleet.record()], "device_status": "bad"},
             check=True, expect=(r"got: bad",)),
    ]


def environment_cases(fleet, proxy):
    """Environment variables as AWX injects them: an optional field left empty arrives as an empty variable and
    must mean "not set"; a wrong one must be named. Where "not set" selects a public endpoint, the request goes to
    a proxy on 127.0.0.1 that records where it was asked to connect and lets nothing through."""
    fi, gi = "feishu_device_record_info", "msgraph_device_info"
    through_proxy = {"HTTPS_PROXY": proxy.url, "https_proxy": proxy.url, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}

    def connected_to(host):
        def verify(result, sandbox):
            targets = [request["target"] for request in proxy.requests if request["method"] == "CONNECT"]
            return [] if host + ":443" in targets else ["the default endpoint %s was not used (proxy saw %s)" % (host, targets)]
        return verify

    return [
        Case("env FEISHU_BASE_URL empty means the default", fi, {"limit": 1, "max_retries": 0}, connect=False,
             env=dict(through_proxy, FEISHU_BASE_URL=""), expect=(r"tenant_access_token",),
             verify=connected_to("open.feishu.cn")),
        Case("env FEISHU_APP_SECRET empty", fi, {"limit": 1}, env={"FEISHU_APP_SECRET": ""}, no_request=True,
             expect=(r"Feishu credentials are missing", r"FEISHU_APP_SECRET")),
        Case("env FEISHU_APP_ID empty", fi, {"limit": 1}, env={"FEISHU_APP_ID": ""}, no_request=True,
             expect=(r"credentials are missing", r"FEISHU_APP_ID")),
        Case("env FEISHU_TENANT_ACCESS_TOKEN empty", fi, {"limit": 1}, env={"FEISHU_TENANT_ACCESS_TOKEN": ""},
             succeed=True),
        Case("env AZURE_CLOUD_ENVIRONMENT unknown", gi, {"limit": 1}, env={"AZURE_CLOUD_ENVIRONMENT": "AzureGermanCloud"},
             no_request=True, expect=(r"'AzureGermanCloud' is not a national cloud", r"AzureUSGovernment")),
        Case("env AZURE_CLOUD_ENVIRONMENT empty", gi, {"limit": 1}, env={"AZURE_CLOUD_ENVIRONMENT": ""}, succeed=True),
        Case("env AZURE_CLIENT_SECRET empty", gi, {"limit": 1}, env={"AZURE_CLIENT_SECRET": ""}, no_request=True,
             expect=(r"Microsoft Graph credentials are missing", r"AZURE_CLIENT_SECRET")),
        Case("env AZURE_TENANT_ID empty", gi, {"limit": 1}, env={"AZURE_TENANT_ID": ""}, no_request=True,
             expect=(r"tenant_id",)),
        Case("env MSGRAPH_ENDPOINT empty means the default", gi, {"limit": 1, "max_retries": 0}, connect=False,
             env=dict(through_proxy, MSGRAPH_ENDPOINT=""), expect=(r"/devices",), verify=connected_to("graph.microsoft.com")),
        Case("env MSGRAPH_TENANT_SIZE empty", gi, {"limit": 1}, env={"MSGRAPH_TENANT_SIZE": ""}, succeed=True),
        Case("env MSGRAPH_AUTH_SOURCE empty", gi, {"limit": 1}, env={"MSGRAPH_AUTH_SOURCE": ""}, succeed=True),
        Case("env AZURE_CLOUD_ENVIRONMENT a word", gi, {"limit": 1}, env={"AZURE_CLOUD_ENVIRONMENT": "Azure Cloud"},
             no_request=True, expect=(r"'Azure Cloud'",)),
    ]


def malformed_answer_cases(fleet, recorder):
    """Answers no API should send. Each case has an emulator of its own, with the fault that sends it."""
    fr, fi, gd, gi = "feishu_device_record", "feishu_device_record_info", "msgraph_device", "msgraph_device_info"
    elsewhere = "http://localhost:%d/steal" % recorder.port
    redirect = dict(action="answer", status=307, headers={"Location": elsewhere + "?code=4711"})
    redirected = (r"redirected", re.escape(elsewhere))
    no_query = (r"code=4711", r"refused")
    not_understood = r"(?i)does not understand|not json|no feishu envelope|unexpected|html"

    def requests_with(code, count):
        def verify(result, sandbox):
            seen = len([e for e in sandbox.wire.entries() if e.get("api_code") == code])
            return [] if seen == count else ["%d answers with code %s, expected %d (retried as a 429)" % (seen, code, count)]
        return verify

    rid = fleet.record(device_status=1)
    device = fleet.windows()
    cases = [
        Case("feishu list: HTML page under HTTP 200", fi, {"limit": 1},
             faults=[dict(action="answer", body=HTML_PAGE, content_type="text/html", match=LIST_CALL)],
             expect=(not_understood, r"HTTP 200")),
        Case("feishu list: truncated JSON", fi, {"limit": 1},
             faults=[dict(action="answer", body='{"code":0,"data":{"items":[', content_type="application/json",
                          match=LIST_CALL)],
             expect=(not_understood,)),
        Case("feishu list: data a string", fr, {"device_name": ["FG-LAPTOP-0001"], "device_status": "untrusted"},
             faults=[dict(action="answer", body={"code": 0, "msg": "success", "data": "oops"}, match=LIST_CALL)],
             expect=(r"its data is str, not an object",)),
        Case("feishu list: items [null, 5]", fr, {"serial_number": ["C02FG0001"], "device_status": "untrusted"},
             faults=[dict(action="answer", body={"code": 0, "msg": "success", "data": {"items": [None, 5]}},
                          match=LIST_CALL)],
             expect=(r"items that are not device records",)),
        Case("feishu list: items an object", fi, {"limit": 5},
             faults=[dict(action="answer", body={"code": 0, "msg": "success", "data": {"items": {"a": 1}}},
                          match=LIST_CALL)],
             expect=(r"items that are not device records",)),
        Case("feishu list: page_token a number", fi, {},
             faults=[dict(action="answer", body={"code": 0, "msg": "success",
                                                 "data": {"items": [], "has_more": True, "page_token": 5}},
                          match=LIST_CALL)],
             expect=(r"page_token that is not a string",)),
        Case("feishu list: non-zero code under HTTP 200", fr, {"device_name": ["FG-LAPTOP-0002"], "device_status": "untrusted"},
             faults=[dict(action="answer", body={"code": 1780101, "msg": "Request param error."}, match=LIST_CALL)],
             expect=(r"Request param error", r"code 1780101")),
        Case("feishu list: rate limited under HTTP 200", fi, {"limit": 1, "max_retries": 2},
             faults=[dict(action="answer", body={"code": 99991400, "msg": "request trigger frequency limit"},
                          match=LIST_CALL, times=5)],
             expect=(r"rate limited", r"99991400"), verify=requests_with(99991400, 3)),
        Case("feishu list: rate limited under HTTP 400", fi, {"limit": 1, "max_retries": 2},
             faults=[dict(action="status", status=400, code=99991400, msg="request trigger frequency limit",
                          match=LIST_CALL, times=5)],
             expect=(r"rate limited", r"99991400"), verify=requests_with(99991400, 3)),
        Case("feishu list: HTML error page, retries spent", fi, {"limit": 1, "max_retries": 1},
             faults=[dict(action="answer", status=500, body=HTML_PAGE, content_type="text/html", match=LIST_CALL,
                          times=5)],
             expect=(r"HTTP 500",)),
        Case("feishu record: device_record a string", fi, {"device_record_id": [rid]},
             faults=[dict(action="answer", body={"code": 0, "msg": "success", "data": {"device_record": "x"}},
                          match={"method": "GET"})],
             expect=(r"without that record", rid)),
        Case("feishu list: redirect to another host", fi, {"limit": 1},
             faults=[dict(redirect, match=LIST_CALL)], expect=redirected, reject=no_query),
        Case("feishu token: redirect to another host", fi, {"limit": 1},
             faults=[dict(redirect, match=FEISHU_TOKEN_CALL)], expect=redirected, reject=no_query),
        Case("feishu token: HTML page under HTTP 200", fi, {"limit": 1},
             faults=[dict(action="answer", body=HTML_PAGE, content_type="text/html", match=FEISHU_TOKEN_CALL)],
             expect=(not_understood,), reject=(r"refused",)),
        Case("feishu token: an answer without a token", fi, {"limit": 1},
             faults=[dict(action="answer", body={"code": 0, "msg": "ok"}, match=FEISHU_TOKEN_CALL)],
             expect=(r"(?i)token",), reject=(r"refused",)),
        Case("feishu token: the token an object", fi, {"limit": 1},
             faults=[dict(action="answer", body={"code": 0, "msg": "ok", "tenant_access_token": {"a": 1}, "expire": 7200},
                          match=FEISHU_TOKEN_CALL)],
             expect=(r"(?i)token",), reject=(r"refused",)),
        Case("feishu token: expire not a number", fi, {"limit": 1},
             faults=[dict(action="answer", body={"code": 0, "msg": "ok", "tenant_access_token": "t-0123456789abcdef",
                                                 "expire": "soon"}, match=FEISHU_TOKEN_CALL)],
             expect=(r"(?i)expire|token",)),
        Case("graph token: access_token a number", gi, {"limit": 1},
             faults=[dict(action="answer", body={"token_type": "Bearer", "access_token": 5, "expires_in": 3599},
                          match=GRAPH_TOKEN_CALL)],
             expect=(r"(?i)token",), reject=(r"refused",)),
        Case("graph token: expires_in not a number", gi, {"limit": 1},
             faults=[dict(action="answer", body={"token_type": "Bearer", "access_token": "eyJ0eXAiOiJKV1QifQ.e30.c2ln",
                                                 "expires_in": "soon"}, match=GRAPH_TOKEN_CALL)],
             expect=(r"(?i)expires_in|token",)),
        Case("graph token: expires_in 1e999", gi, {"limit": 1},
             faults=[dict(action="answer", content_type="application/json",
                          body='{"token_type": "Bearer", "access_token": "eyJ0eXAiOiJKV1QifQ.e30.c2ln", "expires_in": 1e999}',
                          match=GRAPH_TOKEN_CALL)],
             expect=(r"its expires_in inf is not a number of seconds",), reject=(r"refused",)),
        Case("feishu token: expire 1e999", fi, {"limit": 1},
             faults=[dict(action="answer", content_type="application/json",
                          body='{"code": 0, "msg": "ok", "tenant_access_token": "t-0123456789abcdef", "expire": 1e999}',
                          match=FEISHU_TOKEN_CALL)],
             expect=(r"its expire inf is not a number of seconds",), reject=(r"refused",)),
        Case("feishu token: expire NaN", fi, {"limit": 1},
             faults=[dict(action="answer", body={"code": 0, "msg": "ok", "tenant_access_token": "t-0123456789abcdef",
                                                 "expire": "NaN"}, match=FEISHU_TOKEN_CALL)],
             expect=(r"its expire 'NaN' is not a number of seconds",), reject=(r"refused",)),
        Case("graph token: an error in Graph's shape", gi, {"limit": 1},
             faults=[dict(action="answer", status=400, body={"error": {"code": "BadRequest", "message": "Bad tenant"}},
                          match=GRAPH_TOKEN_CALL)],
             expect=(r"Bad tenant|BadRequest|HTTP 400",)),
        Case("graph page: HTML page under HTTP 200", gi, {"filter": "accountEnabled eq true"},
             faults=[dict(action="answer", body=HTML_PAGE, content_type="text/html", match=GRAPH_PAGE_CALL)],
             expect=(r"does not understand",)),
        Case("graph page: truncated JSON", gi, {"filter": "accountEnabled eq true"},
             faults=[dict(action="answer", body='{"value":[{"id":', content_type="application/json",
                          match=GRAPH_PAGE_CALL)],
             expect=(r"does not understand",)),
        Case("graph page: value [null, 5]", gi, {"filter": "accountEnabled eq true"},
             faults=[dict(action="answer", body={"value": [None, 5]}, match=GRAPH_PAGE_CALL)],
             expect=(r"value is not a list of objects",)),
        Case("graph page: error body not JSON", gi, {"filter": "accountEnabled eq true"},
             faults=[dict(action="answer", status=400, body="Bad Request", match=GRAPH_PAGE_CALL)],
             expect=(r"HTTP 400",)),
        Case("graph $batch part: value [null]", gd, {"display_name": ["FG-WS-0001"], "account_enabled": False},
             faults=[dict(action="answer", body={"value": [None]}, match=GRAPH_GET_PART)],
             expect=(r"value is not a list of objects",)),
        Case("graph $batch part: body a string", gd, {"id": [device], "account_enabled": False},
             faults=[dict(action="answer", body="oops", match=GRAPH_GET_PART)],
             expect=(r"does not understand",)),
        Case("graph $batch part: status a string", gd, {"id": [device], "account_enabled": False},
             faults=[dict(action="answer", body={"responses": [{"id": "1", "status": "200", "body": {}}]},
                          match=GRAPH_BATCH_CALL)],
             expect=(r"status '200'",)),
        Case("graph $batch: HTML page under HTTP 200", gd, {"id": [device], "account_enabled": False},
             faults=[dict(action="answer", body=HTML_PAGE, content_type="text/html", match=GRAPH_BATCH_CALL)],
             expect=(r"without a list of responses",)),
        Case("graph $batch: no answer for a part", gd, {"id": [device], "account_enabled": False},
             faults=[dict(action="answer", body={"responses": []}, match=GRAPH_BATCH_CALL)],
             expect=(r"lacks responses for 1",)),
        Case("graph $batch part: HTML error pages, retries spent", gd,
             {"id": [device], "account_enabled": False, "max_retries": 1},
             faults=[dict(action="answer", status=502, body=HTML_PAGE, content_type="text/html", match=GRAPH_GET_PART,
                          times=5)],
             expect=(r"HTTP 502",)),
        Case("graph page: redirect to another host", gi, {"filter": "accountEnabled eq true"},
             faults=[dict(redirect, match=GRAPH_PAGE_CALL)], expect=redirected, reject=no_query),
        Case("graph $batch: redirect to another host", gd, {"id": [device], "account_enabled": False},
             faults=[dict(redirect, match=GRAPH_BATCH_CALL)], expect=redirected, reject=no_query),
        Case("graph token: redirect to another host", gi, {"limit": 1},
             faults=[dict(redirect, match=GRAPH_TOKEN_CALL)], expect=redirected, reject=no_query),
        Case("graph token: HTML page under HTTP 200", gi, {"limit": 1},
             faults=[dict(action="answer", body=HTML_PAGE, content_type="text/html", match=GRAPH_TOKEN_CALL)],
             expect=(r"(?i)token",), reject=(r"refused",)),
        Case("graph token: an answer without a token", gi, {"limit": 1},
             faults=[dict(action="answer", body={"token_type": "Bearer", "expires_in": 3599}, match=GRAPH_TOKEN_CALL)],
             expect=(r"(?i)token",), reject=(r"refused",)),
        Case("graph page: Retry-After of 100,000 seconds", gi, {"filter": "accountEnabled eq true"},
             faults=[dict(action="status", status=429, retry_after=100000, match=GRAPH_PAGE_CALL)],
             expect=(r"wait 100000 s", r"180")),
        Case("graph $batch part: Retry-After of 100,000 seconds", gd, {"id": [device], "account_enabled": False},
             faults=[dict(action="status", status=429, retry_after=100000, match=GRAPH_GET_PART)],
             expect=(r"wait 100000 s",)),
        Case("graph page: Retry-After an HTTP-date in 2099", gi, {"filter": "accountEnabled eq true"},
             faults=[dict(action="status", status=429, retry_after="Thu, 01 Jan 2099 00:00:00 GMT", match=GRAPH_PAGE_CALL)],
             expect=(r"asked to wait \d+ s",)),
    ]
    return cases


# --- the tables, one ansible-playbook run each ----------------------------------------------------------------------


def test_feishu_inputs_are_refused_naming_the_value_and_nothing_is_written(feishu, graph, playbook):
    run_table(playbook, feishu, graph, feishu_input_cases(Fleet(feishu, graph)))


def test_graph_inputs_are_refused_naming_the_value_and_nothing_is_written(feishu, graph, playbook):
    run_table(playbook, feishu, graph, graph_input_cases(Fleet(feishu, graph)))
    # Every Graph request carries a GUID client-request-id of its own (named in errors, what support asks for).
    calls = [e for e in graph.wire.entries() if e.get("batch_item") is None and e["path"].startswith("/v1.0/")]
    ids = [dict((k.lower(), v) for k, v in e["headers"].items()).get("client-request-id") for e in calls]
    assert calls and all(re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", i or "") for i in ids), ids
    assert len(set(ids)) == len(ids), "a client-request-id was reused"


def test_check_mode_refuses_what_the_real_run_refuses_before_any_request(feishu, graph, playbook):
    run_table(playbook, feishu, graph, check_mode_cases(Fleet(feishu, graph)))


def test_injected_environment_variables(feishu, graph, playbook, recorder):
    run_table(playbook, feishu, graph, environment_cases(Fleet(feishu, graph), recorder))


def test_malformed_answers_fail_naming_the_answer_and_nothing_is_written(feishu, graph, playbook, recorder):
    run_table(playbook, feishu, graph, malformed_answer_cases(Fleet(feishu, graph), recorder))
    assert recorder.requests == [], "a redirect was followed: %s" % recorder.requests


# --- edge-case defects that need a setup of their own -----------------------------------------------------------------


def one_task(name, module, args, **keywords):
    task = {"name": name, "fleetguard.devices." + module: args}
    task.update(keywords)
    return yaml.safe_dump([task], sort_keys=False)


def test_1_a_graph_write_whose_answer_is_late_is_settled_never_sent_again(graph, playbook):
    with graph.lock:
        ids = sorted(oid for oid, d in graph.devices.items() if d["operatingSystem"] == "Windows" and d["accountEnabled"])[:4]
    ids, gone = ids[:3], ids[3]
    # The batch of three PATCHes answers after the client's timeout; the first part lands 3 s late.
    graph.faults.add(action="latency", seconds=3, match={"method": "PATCH", "batch_item": True}, times=1)
    first = playbook(one_task("disable", "msgraph_device", {"id": ids, "account_enabled": False, "timeout": 1}),
                     module_defaults=False)
    assert first.returncode == 0, first.stdout[-3000:]
    assert first.task("disable")["result"]["changed_devices"] == ids
    # A DELETE answered late is settled the same way: sent once, reported changed.
    graph.faults.add(action="latency", seconds=3, match={"method": "DELETE", "batch_item": True}, times=1)
    second = playbook(yaml.safe_dump([
        {"name": "enable", "fleetguard.devices.msgraph_device": {"id": ids, "account_enabled": True, "timeout": 1}},
        {"name": "delete", "fleetguard.devices.msgraph_device": {"id": [gone], "state": "absent", "timeout": 1}}],
        sort_keys=False), module_defaults=False)
    assert second.returncode == 0, second.stdout[-3000:]
    time.sleep(1)
    patches = [(e["path"].rsplit("/", 1)[-1], e["body"]) for e in graph.wire.entries(method="PATCH")]
    assert sorted(patches, key=str) == sorted([(i, {"accountEnabled": False}) for i in ids]
                                              + [(i, {"accountEnabled": True}) for i in ids], key=str), patches
    with graph.lock:
        assert [graph.devices[i]["accountEnabled"] for i in ids] == [True, True, True], "a late write landed again"
        assert gone not in graph.devices
    assert second.task("delete")["result"]["changed_devices"] == [gone]
    assert [e["status"] for e in graph.wire.entries(method="DELETE")] == [204], "the DELETE was sent again"


def test_1_a_feishu_write_whose_answer_is_late_is_reported_changed_and_a_late_delete_is_settled(feishu, playbook):
    with feishu.lock:
        rid, gone = [r for r in sorted(feishu.records, key=int) if feishu.records[r].get("device_status", 0) != 2][:2]
    # The PUT lands 2.5 s late (the client gave up at 2 s); the PUT sent again after the re-read arrives after it
    # and is refused as stale. The record was changed by this task, once.
    feishu.faults.add(action="latency", seconds=2.5, match={"method": "PUT"}, times=1)
    feishu.faults.add(action="latency", seconds=1, match={"method": "PUT"}, times=1)
    feishu.faults.add(action="latency", seconds=2.5, match={"method": "DELETE"}, times=1)
    tasks = yaml.safe_dump([
        {"name": "untrust", "fleetguard.devices.feishu_device_record": {"device_record_id": [rid], "timeout": 2,
                                                                        "device_status": "untrusted"}},
        {"name": "delete", "fleetguard.devices.feishu_device_record": {"device_record_id": [gone], "timeout": 2,
                                                                       "state": "absent"}}], sort_keys=False)
    run = playbook(tasks)
    assert run.returncode == 0, run.stdout[-3000:]
    applied = [e for e in feishu.wire.entries(method="PUT") if e["status"] == 200 and e["api_code"] == 0]
    assert len(applied) == 1 and feishu.records[rid]["version"] == "1"
    assert [e["status"] for e in feishu.wire.entries(method="DELETE")] == [200], "the DELETE was sent again"
    assert gone not in feishu.records
    untrust = run.task("untrust")["result"]
    assert untrust["outcomes"][0]["outcome"] == "changed" and untrust["changed"] is True, \
        "the record this task changed is reported %s" % untrust["outcomes"]
    assert run.task("delete")["result"]["changed"] is True


def test_1_a_feishu_write_given_up_while_its_lost_answer_may_still_land_is_not_reported_failed(feishu, playbook):
    with feishu.lock:
        rid = [r for r in sorted(feishu.records, key=int) if feishu.records[r].get("device_status", 0) != 2][0]
    # The first PUT lands 2.5 s late (the client gave up at 2 s); the two sent after it are dropped before they
    # apply, and each re-read comes before the first one lands. The task gives up on a write that then lands.
    feishu.faults.add(action="latency", seconds=2.5, match={"method": "PUT"}, times=1)
    feishu.faults.add(action="reset", match={"method": "PUT"}, times=2)
    run = playbook(one_task("untrust", "feishu_device_record", {"device_record_id": [rid], "timeout": 2,
                                                                "device_status": "untrusted"}))
    time.sleep(1)
    assert feishu.records[rid]["device_status"] == 2 and feishu.records[rid]["version"] == "1", "the late PUT did not land"
    (outcome,) = run.task("untrust")["result"]["outcomes"]
    assert outcome["outcome"] in ("uncertain", "changed"), (
        "the record was changed by this task's first PUT, yet it is reported %s: %s"
        % (outcome["outcome"], outcome.get("reason")))


def inventory_list(playbook, tmp_path, source_name, text):
    source = tmp_path / source_name
    source.write_text(textwrap.dedent(text))
    env = dict(playbook.env, ANSIBLE_INVENTORY_UNPARSED_FAILED="1")
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-inventory"), "-i", str(source), "--list"],
                          env=env, cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return plain(json.loads(proc.stdout)["_meta"]["hostvars"]), proc.stderr


def test_2_a_device_named_like_another_ones_fallback_host_name_keeps_its_host(feishu, graph, playbook, tmp_path):
    first = feishu.add_record(device_name="SHARED-NAME", device_system=2, serial_number="SHARED-1")
    feishu.add_record(device_name="SHARED-NAME", device_system=2, serial_number="SHARED-2")
    feishu.add_record(device_name="SHARED-NAME_%s" % first["device_record_id"], device_system=2, serial_number="SHARED-3")
    hosts, stderr = inventory_list(playbook, tmp_path, "office.feishu_device_records.yml",
                                   "plugin: fleetguard.devices.feishu_device_records\nbase_url: %s\n" % feishu.url)
    assert sorted(v["feishu_device_record_id"] for v in hosts.values()) == sorted(feishu.records), "a record has no host"
    assert "SHARED-NAME" in stderr and "WARNING" in stderr.upper(), "no warning names the fallback"

    one = graph.add_device(displayName="SHARED-NAME", operatingSystem="Windows")
    graph.add_device(displayName="SHARED-NAME", operatingSystem="Windows")
    graph.add_device(displayName="SHARED-NAME_%s" % one["id"], operatingSystem="Windows")
    hosts, stderr = inventory_list(playbook, tmp_path, "tenant.msgraph_devices.yml",
                                   "plugin: fleetguard.devices.msgraph_devices\n")
    assert sorted(v["msgraph_id"] for v in hosts.values()) == sorted(graph.devices), "a device has no host"
    assert "SHARED-NAME" in stderr and "WARNING" in stderr.upper(), "no warning names the fallback"


def make_certificate(directory):
    """A self-signed certificate for 127.0.0.1: (certificate path, key path)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "server.crt", directory / "server.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def tls_feishu(tmp_path):
    """A Feishu emulator behind TLS with a self-signed certificate; `handshakes` counts the TLS handshakes that
    failed (each one an attempt by a client that did not trust the certificate)."""
    (tmp_path / "tls").mkdir()
    cert_path, key_path = make_certificate(tmp_path / "tls")
    sandbox = FeishuSandbox(records=10, seed=3)
    server = SandboxHTTPServer(sandbox)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert_path), str(key_path))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    failed = []
    accept = server.get_request

    def counted():
        try:
            return accept()
        except ssl.SSLError:
            failed.append(time.time())
            raise

    server.get_request = counted
    sandbox.server = server.start()
    sandbox.https_url = "https://127.0.0.1:%d" % server.server_port
    sandbox.cert_path = cert_path
    sandbox.failed_handshakes = failed
    yield sandbox
    sandbox.stop()


def test_3_and_10_validate_certs_false_wins_over_a_ca_bundle_and_an_untrusted_certificate_is_named_once(
        tls_feishu, playbook, tmp_path):
    other_ca, dummy = make_certificate(tmp_path)  # a bundle that does not hold the server's certificate
    info = {"limit": 1, "base_url": tls_feishu.https_url}
    tasks = yaml.safe_dump([
        {"name": "not verified, a CA bundle in the environment", "ignore_errors": True,
         "fleetguard.devices.feishu_device_record_info": dict(info, validate_certs=False),
         "environment": {"REQUESTS_CA_BUNDLE": str(other_ca), "CURL_CA_BUNDLE": str(other_ca)}},
        {"name": "verified, the certificate unknown", "ignore_errors": True,
         "fleetguard.devices.feishu_device_record_info": dict(info, validate_certs=True)},
        {"name": "verified, the certificate in REQUESTS_CA_BUNDLE", "ignore_errors": True,
         "fleetguard.devices.feishu_device_record_info": dict(info, validate_certs=True),
         "environment": {"REQUESTS_CA_BUNDLE": str(tls_feishu.cert_path)}}], sort_keys=False)
    run = playbook(tasks, module_defaults=False)
    unverified = run.task("not verified, a CA bundle in the environment")
    assert unverified["status"] == "ok", unverified["result"].get("msg")
    refused = run.task("verified, the certificate unknown")
    assert refused["status"] == "failed", refused["result"]
    refused = refused["result"]
    assert re.search(r"certificate .*could not be verified", refused["msg"]), refused.get("msg")
    assert "127.0.0.1:%d" % int(tls_feishu.https_url.rsplit(":", 1)[1]) in refused["msg"]
    assert len(tls_feishu.failed_handshakes) == 1, "a certificate that does not verify was tried %d times" % len(
        tls_feishu.failed_handshakes)
    trusted = run.task("verified, the certificate in REQUESTS_CA_BUNDLE")
    assert trusted["status"] == "ok", trusted["result"].get("msg")


def test_4_an_empty_extension_attribute_is_stored_as_null_and_is_no_change(graph, playbook):
    with graph.lock:
        unset, tagged = sorted(oid for oid, d in graph.devices.items() if d["operatingSystem"] == "Windows")[:2]
        graph.devices[unset]["extensionAttributes"]["extensionAttribute5"] = None
        graph.devices[tagged]["extensionAttributes"]["extensionAttribute5"] = "tagged"
    tasks = one_task("clear", "msgraph_device", {"id": [unset, tagged], "extension_attributes": {"extensionAttribute5": ""}},
                     register="out")
    first = playbook(tasks, module_defaults=False)
    assert first.returncode == 0, first.stdout[-3000:]
    assert first.task("clear")["result"]["changed_devices"] == [tagged]
    again = playbook(tasks, module_defaults=False)
    assert again.task("clear")["result"]["changed"] is False
    assert [e["path"].rsplit("/", 1)[-1] for e in graph.wire.entries(method="PATCH")] == [tagged]


def test_7_and_8_beta_user_scoped_rome_properties_and_delete_with_an_app_only_token(graph, playbook):
    with graph.lock:
        user_id, device_id = next((u, d) for u, ds in sorted(graph.user_devices.items()) for d in ds
                                  if graph.devices[d]["operatingSystem"] != "Windows")
        upn = graph.users[user_id]["userPrincipalName"]
    address = {"id": [device_id], "api_version": "beta", "user": upn}
    tasks = yaml.safe_dump([
        {"name": "rename", "fleetguard.devices.msgraph_device": dict(address, name="Quarantined phone", kind="Phone")},
        {"name": "delete", "fleetguard.devices.msgraph_device": dict(address, state="absent")}], sort_keys=False)
    run = playbook(tasks, module_defaults=False)
    assert run.returncode == 0, run.stdout[-3000:]
    assert run.task("rename")["result"]["changed_devices"] == [device_id]
    assert run.task("delete")["result"]["changed_devices"] == [device_id]
    user_path = "/beta/users/%s/devices/%s" % (upn.replace(".", "%2E").replace("@", "%40"), device_id)
    assert [(e["method"], e["path"], e["status"]) for e in graph.wire.entries() if e["method"] in WRITE_METHODS] == [
        ("PATCH", user_path, 200), ("DELETE", user_path, 204)]
    assert device_id not in graph.devices


def test_12_a_retry_after_http_date_is_waited_for(graph, playbook):
    when = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) + datetime.timedelta(seconds=6)
    graph.faults.add(action="status", status=429, retry_after=email.utils.format_datetime(when, usegmt=True),
                     match=GRAPH_PAGE_CALL, times=1)
    run = playbook(one_task("read", "msgraph_device_info", {"filter": "accountEnabled eq true", "limit": 1}),
                   module_defaults=False)
    assert run.returncode == 0, run.stdout[-3000:]
    refused, retried = graph.wire.entries(method="GET", path_regex=GRAPH_PAGE_CALL["path_regex"])[:2]
    assert refused["status"] == 429 and retried["status"] == 200
    assert retried["time"] >= when.timestamp() - 1.0, "retried %.1f s after the 429, %.1f s before the date" % (
        retried["time"] - refused["time"], when.timestamp() - retried["time"])


AUDIT_TASK = "- name: Audit\n  ansible.builtin.include_role:\n    name: fleetguard.devices.audit\n"


def audit_vars(feishu, tmp_path, **more):
    values = dict(audit_report_dir=str(tmp_path / "reports"),
                  audit_feishu_connection=dict(base_url=feishu.url, app_id=feishu.app_id, app_secret=feishu.app_secret))
    values.update(more)
    return values


def audit_report(tmp_path):
    path = tmp_path / "reports" / "drift-report.json"
    return json.loads(path.read_text()) if path.exists() else None


def two_records(feishu, status):
    with feishu.lock:
        return [r for r in sorted(feishu.records, key=int) if feishu.records[r].get("device_status", 0) == status][:2]


def test_13_the_same_device_asked_for_two_states_is_a_conflict(feishu, playbook, tmp_path):
    rid = two_records(feishu, 1)[0]
    baseline = [{"device_record_id": rid, "device_status": "trusted"},
                {"device_record_id": rid, "device_status": "untrusted"}]
    run = playbook(AUDIT_TASK, play_vars=audit_vars(feishu, tmp_path, audit_baseline=baseline), module_defaults=False)
    report = audit_report(tmp_path)
    if report is None:
        # Refusing the baseline before any request, naming the conflict, is as good as reporting it.
        assert run.returncode != 0 and re.search(r"(?i)conflict", run.stdout), run.stdout[-3000:]
        return
    rows = dict((e["entry"], (e["status"], e.get("message") or "")) for value in report.values() if isinstance(value, list)
                for e in value if isinstance(e, dict) and "entry" in e)
    assert sorted(status for status, dummy in rows.values()) != ["drifted", "in_sync"], \
        "the same device asked to be trusted and untrusted is reported as one drifted, one in sync: %s" % rows
    assert all("conflict" in (status + message).lower() for status, message in rows.values()), rows


@pytest.mark.parametrize("csv_text, succeeds", [
    ("device_record_id,device_status\n{0},trusted\n\n{1},trusted\n", True),
    ("device_record_id,device_status\n{0},trusted\n,,\n{1},trusted\n", True),
    ("device_record_id,device_status\n{0},trusted,surplus\n{1},trusted\n", False),
], ids=["a blank row is skipped", "a row of empty cells is skipped like a blank one", "an extra cell is refused"])
def test_13_csv_baseline_rows(feishu, playbook, tmp_path, csv_text, succeeds):
    first, second = two_records(feishu, 1)
    (tmp_path / "baseline.csv").write_text(csv_text.format(first, second))
    run = playbook(AUDIT_TASK, play_vars=audit_vars(feishu, tmp_path, audit_baseline_file=str(tmp_path / "baseline.csv")),
                   module_defaults=False)
    if succeeds:
        assert run.returncode == 0, run.stdout[-3000:]
        assert audit_report(tmp_path)["summary"]["entries"] == 2
    else:
        assert run.returncode != 0, "a row with a cell more than the header names was accepted"
        assert re.search(r"(?i)surplus|cell|column", run.stdout), run.stdout[-3000:]
        assert feishu.wire.entries() == [], "the directory was read before the baseline was refused"


def test_13_an_audit_in_which_every_entry_errored_fails_after_writing_its_report(feishu, playbook, tmp_path):
    first, second = two_records(feishu, 1)
    baseline = [{"device_record_id": first, "device_status": "trusted"},
                {"device_record_id": second, "device_status": "untrusted"}]
    connection = dict(base_url=feishu.url, app_id=feishu.app_id, app_secret="not-the-secret")
    run = playbook(AUDIT_TASK, play_vars=audit_vars(feishu, tmp_path, audit_baseline=baseline,
                                                    audit_feishu_connection=connection),
                   module_defaults=False)
    report = audit_report(tmp_path)
    assert report is not None and report["summary"]["errors"] == 2, run.stdout[-3000:]
    assert run.returncode != 0, "an audit in which every entry errored ended with exit 0"


def test_14_real_runs_and_check_mode_return_the_same_keys(graph, playbook):
    with graph.lock:
        device_id = sorted(oid for oid, d in graph.devices.items() if d["operatingSystem"] == "Windows")[0]
    args = {"id": [device_id], "extension_attributes": {"extensionAttribute9": "same keys"}}
    check = playbook(one_task("tag", "msgraph_device", args), check=True, module_defaults=False)
    real = playbook(one_task("tag", "msgraph_device", args), module_defaults=False)
    predicted, done = check.task("tag")["result"]["devices"][0], real.task("tag")["result"]["devices"][0]
    assert sorted(predicted) == sorted(done)
    assert not [key for key in done if key.startswith("@odata")]


def test_14_module_defaults_groups_do_what_the_readme_says(feishu, graph, playbook):
    """README: per-API groups take each API's options, `…all` only the options both share."""
    with open(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                           "README.md")) as handle:
        readme = handle.read()
    credentials = readme[readme.find("#### Credentials"):][:1500]
    assert "`…all` only the options both share (`validate_certs`, `timeout`,\n`max_retries`)" in credentials, credentials
    tasks = """
- name: both
  module_defaults:
    group/fleetguard.devices.all:
      timeout: 20
      max_retries: 2
    group/fleetguard.devices.feishu:
      base_url: %s
    group/fleetguard.devices.msgraph:
      graph_endpoint: %s
      authority_host: %s
  block:
    - name: feishu
      fleetguard.devices.feishu_device_record_info: {limit: 1}
      ignore_errors: true
    - name: graph
      fleetguard.devices.msgraph_device_info: {limit: 1}
      ignore_errors: true
""" % (feishu.url, graph.url, graph.url)
    run = playbook(tasks, module_defaults=False)
    failures = ["%s: %s" % (name, run.task(name)["result"].get("msg")) for name in ("feishu", "graph")
                if run.task(name)["status"] != "ok"]
    assert failures == [], failures


def test_15_lsa_info_has_the_apis_format(feishu, playbook):
    run = playbook(one_task("read", "feishu_device_record_info", {}), module_defaults=True)
    records = run.task("read")["result"]["device_records"]
    lines = [r["lsa_info"] for r in records if r.get("lsa_info")]
    assert lines
    pattern = r"\d{19},(在线|离线),\d{4}/\d\d/\d\d \d\d:\d\d:\d\d UTC,\d{4}/\d\d/\d\d \d\d:\d\d:\d\d UTC,v\d+\.\d+\.\d+"
    assert [line for line in lines if not re.fullmatch(pattern, line)] == []


def test_an_audit_into_an_existing_shared_report_folder_keeps_its_mode(feishu, playbook, tmp_path):
    # A report folder such as /tmp (mode 1777) made 0755 would lock every other user out of it.
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    baseline = [{"device_record_id": two_records(feishu, 1)[0], "device_status": "trusted"}]
    run = playbook(AUDIT_TASK, play_vars=audit_vars(feishu, tmp_path, audit_baseline=baseline,
                                                    audit_report_dir=str(shared)), module_defaults=False)
    assert run.returncode == 0, run.stdout[-3000:]
    assert (shared / "drift-report.json").exists()
    assert oct(shared.stat().st_mode & 0o7777) == oct(0o1777)
