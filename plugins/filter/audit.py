# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The decisions of the role fleetguard.devices.audit after its plan (baseline_plan), as three filters
(documented in plugins/filter/<name>.yml):

- baseline_csv: a CSV baseline file's text as a list of entries;
- audit_retry: the entries of the groups whose check-mode call failed, one call each;
- audit_report: the drift report, from the plan and the check-mode results of the write modules.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible_collections.fleetguard.devices.plugins.plugin_utils import drift_report
from ansible_collections.fleetguard.devices.plugins.plugin_utils.baseline import csv_rows
from ansible_collections.fleetguard.devices.plugins.plugin_utils.identifiers import described


def baseline_csv(text):
    """A CSV baseline (the file's text) as a list of row mappings, every value a string: see baseline_csv.yml."""
    return csv_rows(text)


def audit_retry(plan, first_pass):
    """The second pass: each entry of a group whose first call failed, as a call of its own."""
    return drift_report.retry_calls(plan, first_pass, "audit_retry")


def audit_report(plan, first_pass, second_pass, baseline=None, title="Device drift report"):
    """The drift report: every entry's status (drifted, in_sync, unmatched, ambiguous, error, conflict) and why."""
    if baseline is not None and not isinstance(baseline, Mapping):
        raise AnsibleFilterError("audit_report: baseline must be a mapping (where the entries came from), not %s"
                                 % described(baseline))
    return drift_report.report(plan, first_pass, second_pass, dict(baseline or {}), title, "audit_report")


class FilterModule(object):
    """fleetguard.devices filters of the audit role."""

    def filters(self):
        return {
            "baseline_csv": baseline_csv,
            "audit_retry": audit_retry,
            "audit_report": audit_report,
        }
