# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared `attributes` documentation."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
"""

    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details: This module never changes anything, so check mode is the same as a normal run.
    description: Can run in check_mode and return changed status prediction without modifying target.
  diff_mode:
    support: N/A
    details: This module never changes anything, so it has no diff.
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
"""

    FEISHU_GROUP = r"""
options: {}
attributes:
  action_group:
    description:
      - Use C(group/fleetguard.devices.feishu) in C(module_defaults) to set defaults for this module.
      - C(group/fleetguard.devices.all) takes only the options both APIs share (O(validate_certs), O(timeout), O(max_retries)).
    support: full
    membership:
      - fleetguard.devices.feishu
      - fleetguard.devices.all
"""

    MSGRAPH_GROUP = r"""
options: {}
attributes:
  action_group:
    description:
      - Use C(group/fleetguard.devices.msgraph) in C(module_defaults) to set defaults for this module.
      - C(group/fleetguard.devices.all) takes only the options both APIs share (O(validate_certs), O(timeout), O(max_retries)).
    support: full
    membership:
      - fleetguard.devices.msgraph
      - fleetguard.devices.all
"""
