# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""The connection options of both APIs, in one table.

The argument specs (types, defaults, env fallbacks, no_log) and the doc fragments are both built
from these tables, so documentation and behaviour cannot drift apart.
Environment variables are tried in the order listed: the names AWX credential types inject come
first where AWX has a convention.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.common.parameters import env_fallback
from ansible.module_utils.errors import AnsibleFallbackNotFound

COMMON_CONNECTION_OPTIONS = {
    "validate_certs": dict(
        type="bool", default=True,
        description="Verify the API's TLS certificate. Only turn this off against a test endpoint you trust.",
    ),
    "timeout": dict(
        type="float", default=30,
        description="Seconds to wait for the API to answer one request.",
    ),
    "max_retries": dict(
        type="int", default=5,
        description=[
            "How many times one request is retried after a transient fault (HTTP 429, 5xx, connection reset, timeout).",
            "Waits follow the API's C(Retry-After) (Feishu C(x-ogw-ratelimit-reset)) header, else exponential backoff with jitter.",
        ],
    ),
}

FEISHU_CONNECTION_OPTIONS = {
    "app_id": dict(
        type="str", env=["FEISHU_APP_ID"],
        description="ID of the Feishu/Lark custom app (C(cli_...)), used with O(app_secret) to obtain a tenant_access_token.",
    ),
    "app_secret": dict(
        type="str", no_log=True, env=["FEISHU_APP_SECRET"],
        description="Secret of the Feishu/Lark custom app.",
    ),
    "tenant_access_token": dict(
        type="str", no_log=True, env=["FEISHU_TENANT_ACCESS_TOKEN"],
        description=[
            "A ready tenant_access_token (C(t-...)), used instead of O(app_id) and O(app_secret).",
            "It cannot be refreshed: once it expires, every request fails. Prefer O(app_id) and O(app_secret) for long runs.",
        ],
    ),
    "base_url": dict(
        type="str", default="https://open.feishu.cn", env=["FEISHU_BASE_URL"],
        description="Root of the Open Platform API. Use C(https://open.larksuite.com) for Lark.",
    ),
}


MSGRAPH_CONNECTION_OPTIONS = {
    "tenant_id": dict(
        type="str", env=["AZURE_TENANT_ID", "AZURE_TENANT"],
        description="Directory (tenant) id or a verified domain name of the Microsoft Entra tenant.",
    ),
    "client_id": dict(
        type="str", env=["AZURE_CLIENT_ID"],
        description="Application (client) id of the app registration that calls Graph.",
    ),
    "client_secret": dict(
        type="str", no_log=True, env=["AZURE_CLIENT_SECRET", "AZURE_SECRET"],
        description=[
            "Client secret of the app registration (OAuth2 client credentials).",
            "E(AZURE_SECRET) is the name AWX's built-in Microsoft Azure Resource Manager credential injects.",
        ],
    ),
    "client_certificate_path": dict(
        type="path", env=["AZURE_CLIENT_CERTIFICATE_PATH"],
        description=[
            "PEM file holding the private key and the certificate registered on the app, used instead of"
            " O(client_secret): it signs a client assertion (RS256, with C(x5t) and C(x5t#S256)).",
            "Entra ID takes only RSA keys of 2048 bits or more (this collection loads at most 16384 bits); another key"
            " type, a shorter or longer key, an OpenSSH key or a PFX / PKCS#12 file is refused before any request,"
            " naming what the file holds.",
            "Needs the Python library C(cryptography) (a dependency of ansible-core) on the host that calls Graph.",
        ],
    ),
    "client_certificate_password": dict(
        type="str", no_log=True, env=["AZURE_CLIENT_CERTIFICATE_PASSWORD"],
        description=[
            "Password of the private key in O(client_certificate_path), if it is encrypted.",
            "Quote it in YAML: an unquoted C(0123) is read as a number.",
        ],
    ),
    "federated_token_file": dict(
        type="path", env=["AZURE_FEDERATED_TOKEN_FILE"],
        description=[
            "Workload identity federation: a file holding a token from an identity provider the app registration"
            " trusts (a Kubernetes or OpenShift service account token projected into the pod), sent as the client"
            " assertion with O(tenant_id) and O(client_id). It is read again for every new token, as it rotates.",
            "A file that holds no JWT (three base64url parts joined by dots) is refused before anything is sent.",
        ],
    ),
    "access_token": dict(
        type="str", no_log=True, env=["MSGRAPH_ACCESS_TOKEN"],
        description=[
            "A ready Graph access token, used instead of client credentials. It cannot be renewed: when it"
            " expires, every request fails.",
            "A delegated token (one that acts for a user) is paced at Graph's per-user device write limit.",
        ],
    ),
    "auth_source": dict(
        type="str", default="auto", env=["MSGRAPH_AUTH_SOURCE"],
        choices=["auto", "access_token", "client_secret", "certificate", "workload_identity", "managed_identity"],
        description=[
            "How to sign in to Graph. V(auto) takes the first of these whose options are set: O(access_token),"
            " O(client_secret), O(client_certificate_path), O(federated_token_file), then a managed identity when"
            " E(IDENTITY_ENDPOINT) and E(IDENTITY_HEADER) are set (App Service, Container Apps, Azure Arc).",
            "V(managed_identity) asks the identity endpoint of E(IDENTITY_ENDPOINT) (with E(IDENTITY_HEADER)),"
            " else the Azure instance metadata service (its host can be overridden with"
            " E(AZURE_POD_IDENTITY_AUTHORITY_HOST)). With O(client_id), the user-assigned identity of that client id"
            " is used. The metadata service is asked only when this is set, since off Azure it does not answer.",
            "The other choices force that credential and fail when its options are missing.",
        ],
    ),
    "tenant_size": dict(
        type="str", default="small", env=["MSGRAPH_TENANT_SIZE"], choices=["small", "medium", "large"],
        description=[
            "Size of the tenant, which sets Graph's read quota per app and tenant: V(small) (under 50 users, 3,500"
            " resource units per 10 seconds), V(medium) (50 to 500 users, 5,000), V(large) (over 500 users, 8,000).",
            "Reads are paced inside that quota; the default is the smallest, which is safe for every tenant.",
        ],
    ),
    "cloud": dict(
        type="str", default="global", env=["AZURE_CLOUD_ENVIRONMENT"],
        description=[
            "National cloud: V(global) (graph.microsoft.com), V(usgov) (GCC High, graph.microsoft.us),"
            " V(usgovdod) (DoD, dod-graph.microsoft.us), V(china) (21Vianet, microsoftgraph.chinacloudapi.cn).",
            "The names AWX's Microsoft Azure Resource Manager credential and azure.azcollection use are accepted too:"
            " V(AzureCloud), V(AzureUSGovernment), V(AzureChinaCloud). Any other value fails before any request.",
            "Sets the defaults of O(graph_endpoint) and O(authority_host), which win when given.",
        ],
    ),
    "graph_endpoint": dict(
        type="str", env=["MSGRAPH_ENDPOINT"],
        description="Root of the Graph API, overriding the one of O(cloud), for example C(https://graph.microsoft.com).",
    ),
    "authority_host": dict(
        type="str", env=["AZURE_AUTHORITY_HOST"],
        description="Token authority, overriding the one of O(cloud), for example C(https://login.microsoftonline.com).",
    ),
}


def _with_common(options):
    table = dict(options)
    table.update(COMMON_CONNECTION_OPTIONS)
    return table


FEISHU_OPTIONS = _with_common(FEISHU_CONNECTION_OPTIONS)
MSGRAPH_OPTIONS = _with_common(MSGRAPH_CONNECTION_OPTIONS)


def non_empty_env_fallback(*names):
    """The first of the environment variables that is set to something: AWX injects an optional field left
    empty as an empty variable, which must mean "not set", not "set to nothing"."""
    for name in names:
        try:
            value = env_fallback(name)
        except AnsibleFallbackNotFound:
            continue
        if value != "":
            return value
    raise AnsibleFallbackNotFound


def argument_spec(table):
    """AnsibleModule argument_spec entries for a connection table."""
    spec = {}
    for name, option in table.items():
        entry = dict(type=option["type"])
        for key in ("default", "no_log", "choices"):
            if key in option:
                entry[key] = option[key]
        if option.get("env"):
            entry["fallback"] = (non_empty_env_fallback, list(option["env"]))
        spec[name] = entry
    return spec


def doc_options(table, with_env=False):
    """The `options:` mapping of a doc fragment for a connection table.

    Modules read environment variables through argument_spec fallbacks, so their docs only name them.
    Controller plugins (inventory) read them through `env:` entries, and `secret: true` marks the values
    ansible-core 2.22 and later must mask (older versions ignore it).
    """
    docs = {}
    for name, option in table.items():
        description = option["description"]
        description = list(description) if isinstance(description, list) else [description]
        env = option.get("env")
        if env:
            names = " then ".join("E(%s)" % var for var in env)
            description.append("If not set, the value of the environment variable %s is used." % names)
        entry = dict(description=description, type=option["type"])
        for key in ("default", "choices"):
            if key in option:
                entry[key] = option[key]
        if with_env and env:
            # ansible-core uses the LAST `env:` entry that is set: list them reversed, so the first
            # variable of the table still wins, as it does for the modules' fallbacks.
            entry["env"] = [dict(name=var) for var in reversed(env)]
        if with_env and option.get("no_log"):
            entry["secret"] = True
        docs[name] = entry
    return docs


def feishu_fragment():
    return "Connection options of the Feishu/Lark modules.", dict(
        options=doc_options(FEISHU_OPTIONS),
        requirements=["requests >= 2.25 (on the host that runs the module)"],
        notes=[
            "Connection options can be set once for a play with C(module_defaults) and the action group"
            " C(group/fleetguard.devices.feishu); C(group/fleetguard.devices.all) takes only the options both APIs share"
            " (O(validate_certs), O(timeout), O(max_retries)), since each module refuses the other API's options.",
            "The app needs the C(security_and_compliance:device_record:read) scope to read device records and"
            " C(security_and_compliance:device_record:write) to change them.",
        ],
    )


def msgraph_fragment():
    return "Connection options of the Microsoft Graph modules.", dict(
        options=doc_options(MSGRAPH_OPTIONS),
        requirements=[
            "requests >= 2.25 (on the host that runs the module)",
            "cryptography, only for O(client_certificate_path) (it comes with ansible-core)",
        ],
        notes=[
            "Connection options can be set once for a play with C(module_defaults) and the action group"
            " C(group/fleetguard.devices.msgraph); C(group/fleetguard.devices.all) takes only the options both APIs share"
            " (O(validate_certs), O(timeout), O(max_retries)), since each module refuses the other API's options.",
            "Reading devices needs the C(Device.Read.All) application permission; changing them"
            " C(Device.ReadWrite.All). Application callers may change only C(extensionAttributes) of devices"
            " whose operating system is not Windows.",
        ],
    )


def feishu_inventory_fragment():
    return "Connection options of the Feishu/Lark inventory plugin.", dict(
        options=doc_options(FEISHU_OPTIONS, with_env=True),
        requirements=["requests >= 2.25 (on the controller)"],
        notes=[
            "The app needs the C(security_and_compliance:device_record:read) scope.",
            "Secrets are read from the inventory source or the environment and are never written to the inventory"
            " cache or into host variables.",
        ],
    )


def msgraph_inventory_fragment():
    return "Connection options of the Microsoft Graph inventory plugin.", dict(
        options=doc_options(MSGRAPH_OPTIONS, with_env=True),
        requirements=[
            "requests >= 2.25 (on the controller)",
            "cryptography, only for O(client_certificate_path) (it comes with ansible-core)",
        ],
        notes=[
            "The app needs the C(Device.Read.All) application permission.",
            "Secrets are read from the inventory source or the environment and are never written to the inventory"
            " cache or into host variables.",
        ],
    )


# doc fragment name -> function returning (summary, fragment document); rendered by tools/render-doc-fragments.
DOC_FRAGMENTS = dict(feishu=feishu_fragment, msgraph=msgraph_fragment, feishu_inventory=feishu_inventory_fragment,
                     msgraph_inventory=msgraph_inventory_fragment)
