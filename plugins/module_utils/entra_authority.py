# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""The Microsoft Entra authority as the Graph credentials see it: its hosts per national cloud, what a tenant
may be called in a token URL, and how its answers read (refusals in OAuth2's shape or Graph's, and the
managed identity endpoints' lifetimes). The credentials themselves are in msgraph_credentials.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import time

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import InputError, answer_text, finite_number, shown
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_odata import GUID
from ansible_collections.fleetguard.devices.plugins.module_utils.tokens import (
    MAX_LIFETIME,
    lifetime_problem,
    lifetime_seconds,
)

# Graph root and token authority per national cloud
# (https://learn.microsoft.com/en-us/graph/deployments#microsoft-graph-and-graph-explorer-service-root-endpoints).
CLOUDS = {
    "global": ("https://graph.microsoft.com", "https://login.microsoftonline.com"),
    "usgov": ("https://graph.microsoft.us", "https://login.microsoftonline.us"),
    "usgovdod": ("https://dod-graph.microsoft.us", "https://login.microsoftonline.us"),
    "china": ("https://microsoftgraph.chinacloudapi.cn", "https://login.chinacloudapi.cn"),
}
# The names AWX's Azure credential (AZURE_CLOUD_ENVIRONMENT), azure.azcollection and azure-identity use.
CLOUD_ALIASES = {
    "azurecloud": "global", "azurepubliccloud": "global", "public": "global",
    "azureusgovernment": "usgov", "azureusgovernmentcloud": "usgov", "usgovernment": "usgov",
    "azurechinacloud": "china",
}

# A tenant as the token endpoint's path names it: its id, or one of its verified domain names
# (https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow).
DOMAIN_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
# Entra's words for "any tenant": the client-credentials flow, the only one this collection uses, needs one tenant.
MULTI_TENANT_WORDS = ("common", "organizations", "consumers")


def check_tenant_id(tenant_id):
    """Refuse a tenant_id that is neither a GUID nor a domain name: it goes into the token URL's path, where a `/`,
    `?`, `#`, `..` or `%2F` would send the credential to another path."""
    if not isinstance(tenant_id, str):
        raise InputError("tenant_id %s is not a string" % shown(tenant_id))
    if GUID.fullmatch(tenant_id):
        return tenant_id
    if tenant_id.lower() in MULTI_TENANT_WORDS:
        raise InputError("tenant_id %s names no tenant; the client-credentials flow needs the directory (tenant) id"
                         " or a verified domain name of one tenant" % shown(tenant_id))
    labels = tenant_id.split(".")
    domain = len(labels) >= 2 and all(DOMAIN_LABEL.fullmatch(label) for label in labels)
    # At most 253 characters, and a last label of digits would make it an address.
    if domain and len(tenant_id) <= 253 and not labels[-1].isdigit():
        return tenant_id
    raise InputError("tenant_id %s is neither a directory (tenant) id (a GUID) nor a domain name such as"
                     " contoso.onmicrosoft.com" % shown(tenant_id))


def cloud_hosts(cloud):
    """(Graph root, token authority) of a cloud named as this collection or AWX / azure.azcollection name it."""
    name = (cloud or "global").strip().lower()
    name = CLOUD_ALIASES.get(name, name)
    if name not in CLOUDS:
        accepted = sorted(CLOUDS) + ["AzureCloud", "AzureUSGovernment", "AzureChinaCloud"]
        raise InputError("cloud %s is not a national cloud this collection knows; use one of %s"
                         % (shown(cloud), ", ".join(accepted)))
    return CLOUDS[name]


def text_field(body, *names):
    """The first of the answer's fields `names` that holds text, cut when long; else None."""
    for name in names:
        value = body.get(name)
        if isinstance(value, str) and value:
            return answer_text(value)
    return None


def error_code(body):
    """The code of an authority's error answer: the first AADSTS number of `error_codes`, else `error` (a string,
    or the `code` of an error object in Graph's shape)."""
    codes = body.get("error_codes")
    if isinstance(codes, list) and codes and isinstance(codes[0], int) and not isinstance(codes[0], bool):
        return codes[0]
    error = body.get("error")
    if isinstance(error, dict):
        error = error.get("code")
    return answer_text(error)


def refusal_reason(body, status):
    """Why the authority refused, in one line: error_description's first line (the rest repeats ids already in
    request_id), else `error` (or the message of an error object in Graph's shape), else the HTTP status."""
    error = body.get("error")
    for reason in (body.get("error_description"), error.get("message") if isinstance(error, dict) else error):
        if isinstance(reason, str) and reason.strip():
            return answer_text(reason.strip().splitlines()[0])
    return (answer_text(error.get("code")) if isinstance(error, dict) else None) or "HTTP %s" % status


def managed_identity_lifetime(body, now=None):
    """Seconds a managed identity token lives: `expires_in`, else `expires_on` (epoch seconds) - now; None when the
    answer has neither (the token then serves one request). Raises ValueError saying which field holds what, when
    it is no lifetime a token may have."""
    if body.get("expires_in") not in (None, ""):
        problem = lifetime_problem(body["expires_in"], "expires_in")
        if problem:
            raise ValueError(problem)
        return lifetime_seconds(body["expires_in"])
    if body.get("expires_on") in (None, ""):
        return None
    now = time.time() if now is None else now
    try:
        # A token that expired a moment ago (the endpoint's clock is ahead of this host's) serves one request.
        return lifetime_seconds(max(0.0, finite_number(body["expires_on"]) - now))
    except ValueError:
        raise ValueError("its expires_on %s is not a time (epoch seconds) at most %d seconds from now"
                         % (shown(body["expires_on"]), MAX_LIFETIME))
