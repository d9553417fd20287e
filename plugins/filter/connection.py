# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""connection_options: a role's connection variable as the modules' defaults (documented in connection_options.yml)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError


def connection_options(connection):
    """The options of a connection mapping that hold a value: null and empty-string options are dropped, so that
    the modules fall back to their environment variables for them (an empty value would override the environment)."""
    if connection in (None, "", {}):
        return {}
    if not isinstance(connection, Mapping):
        # Named by type only: the value may hold a secret.
        raise AnsibleFilterError("connection_options: expected a mapping of connection options, not a %s"
                                 % type(connection).__name__)
    return dict((name, value) for name, value in connection.items() if value is not None and value != "")


class FilterModule(object):
    """fleetguard.devices filter of the roles' connection variables."""

    def filters(self):
        return {"connection_options": connection_options}
