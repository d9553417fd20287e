# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options that select Feishu device records, shared by feishu_device_record_info and the inventory plugin."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The filters of the list endpoint.
    DOCUMENTATION = r"""
options:
  filters:
    description:
      - Filters of the list endpoint, combined with AND, for example C(device_status), C(device_ownership),
        C(device_terminal_type), C(os), C(device_name), C(serial_number), C(mac_address), C(current_user_id),
        C(latest_user_id), C(is_managed), C(did), C(user_id_type).
      - The enum filters accept names as well as the API's integers (C(device_status) V(unknown), V(trusted),
        V(untrusted); C(device_ownership) V(unknown), V(personal), V(company); C(device_terminal_type) V(unknown),
        V(mobile), V(desktop); C(os) V(unknown), V(windows), V(macos), V(linux), V(android), V(ios),
        V(openharmony)).
      - An unknown filter name or enum name fails before any request.
      - Without filters every record is read.
    type: dict
"""
