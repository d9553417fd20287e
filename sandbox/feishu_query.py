"""How the Feishu emulator reads a list query: its filters, exact matches ANDed, and records rendered with the
requested user id type (https://open.feishu.cn/document/security_and_compliance-v1/security_and_compliance-v2/device_record/list)."""

import re

USER_ID_TYPES = ("open_id", "union_id", "user_id")

# List filters: query name -> record field (None = derived, see _filter_value).
STRING_FILTERS = {
    name: name
    for name in (
        "device_record_id", "device_name", "serial_number", "disk_serial_number", "mac_address",
        "android_id", "uuid", "idfv", "aaid", "mdm_device_id", "mdm_provider_name",
        "cert_serial_number", "cert_issuer",
    )
}
USER_FILTERS = ("current_user_id", "latest_user_id")
INT_FILTERS = {  # query name -> (record field, allowed values)
    "device_ownership": ("device_ownership", range(3)),
    "device_status": ("device_status", range(3)),
    "device_terminal_type": ("device_terminal_type", range(3)),
    "os": ("device_system", range(7)),
    "source": ("source", range(3)),
    "lsa_client_status": (None, (1, 2)),
    "device_env_detect_status": (None, range(3)),
}
BOOL_FILTERS = ("is_managed", "is_public")


def single(query, name):
    """One query value: the first if the parameter is repeated, None if absent."""
    value = query.get(name)
    return value[0] if isinstance(value, list) else value


def render_user_id(open_id, user_id_type):
    """Show a stored open_id (ou_<hex>) as the requested ID kind."""
    suffix = open_id[3:]
    if user_id_type == "union_id":
        return "on_" + suffix
    if user_id_type == "user_id":
        return suffix[:8]
    return open_id


def parse_filters(query):
    """Query params -> {filter name: typed value}; None if any value is invalid. Blank = unset."""
    filters = {}
    for name in list(STRING_FILTERS) + list(USER_FILTERS) + ["did"]:
        value = single(query, name)
        if value:
            filters[name] = value
    for name, (_field, allowed) in INT_FILTERS.items():
        value = single(query, name)
        if value:
            if not re.fullmatch(r"[0-9]+", value) or int(value) not in allowed:
                return None
            filters[name] = int(value)
    for name in BOOL_FILTERS:
        value = single(query, name)
        if value:
            if value not in ("true", "false"):
                return None
            filters[name] = value == "true"
    return filters


def matches(record, filters, user_id_type):
    """All filters ANDed, exact match; `did` matches one member of the record's dids."""
    for name, wanted in filters.items():
        if name == "did":
            if wanted not in record.get("dids", []):
                return False
        elif filter_value(record, name, user_id_type) != wanted:
            return False
    return True


def filter_value(record, name, user_id_type):
    """The record's value as the named filter sees it."""
    if name in STRING_FILTERS:
        return record.get(STRING_FILTERS[name])
    if name in USER_FILTERS:
        return render_user_id(record[name], user_id_type) if record.get(name) else None
    if name in BOOL_FILTERS:
        return bool(record.get(name, False))
    if name == "lsa_client_status":
        return 1 if record.get("lsa_info") else 2
    if name == "device_env_detect_status":
        found = re.search(r"detect_status=(\d)", record.get("device_env_info", ""))
        return int(found.group(1)) if found else 0
    return record.get(INT_FILTERS[name][0])


def render(record, user_id_type):
    rendered = dict(record)
    for name in USER_FILTERS:
        if rendered.get(name):
            rendered[name] = render_user_id(rendered[name], user_id_type)
    if "dids" in rendered:
        rendered["dids"] = list(rendered["dids"])
    return rendered
