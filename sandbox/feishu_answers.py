"""What the Feishu emulator answers (sandbox/feishu.py): the JSON envelope of a success and of each error Feishu
documents for these endpoints (https://open.feishu.cn/document/server-docs/api-call-guide/generic-error-code and
the device_record pages), and the checks of request fields those answers depend on."""

from sandbox.server import Response

# (HTTP status, code, msg)
PARAM_ERROR = (400, 1780101, "Request param error.")
INTERNAL_ERROR = (500, 1780001, "Internal server error.")
NOT_FOUND = (400, 1785008, "The device is not found. Please check the parameter device_record_id.")
NOT_FOUND_OR_STALE = (400, 1785008, "The device is not found. Please check the parameter device_record_id and version.")
INVALID_DEVICE_INFO = (
    400,
    1785005,
    "The device information corresponding to the operating system is invalid. "
    "Please check the device information in the request.",
)
INVALID_DEVICE_SYSTEM = (400, 1785007, "The parameter device_system is invalid.")
DEVICE_EXISTS = (400, 1785010, "The device already exists.")
NOT_AUTHENTICATED_DEVICE = (400, 1785011, "The current user identity has not completed device authentication.")
NEED_TOKEN = (400, 99991661, "Need a token")
INVALID_TENANT_TOKEN = (
    400,
    99991663,
    "Invalid access token for authorization. Please make a request with token attached",
)
USER_TOKEN_NOT_SUPPORTED = (400, 99991668, "user access token not support")
MALFORMED_TOKEN = (400, 99991671, "Invalid token: must start with t-/u-")
RATE_LIMITED = (429, 99991400, "request trigger frequency limit")
TOKEN_INVALID_PARAM = (400, 10003, "invalid param")
TOKEN_BAD_SECRET = (400, 10014, "app secret invalid")


def has_ownership_and_status(payload):
    """Both required ints 0-2 (create and update replace both together)."""
    return is_enum(payload.get("device_ownership"), range(3)) and is_enum(payload.get("device_status"), range(3))


def error_answer(error, **headers):
    status, code, msg = error
    return Response(status, {"code": code, "msg": msg}, dict(headers))


def gateway_error_answer(error):
    """Gateway errors also carry an empty data object (as seen in real reports)."""
    status, code, msg = error
    return Response(status, {"code": code, "msg": msg, "data": {}})


def success_answer(data):
    return Response(200, {"code": 0, "msg": "success", "data": data})


def is_int(value):
    # bool is an int subclass in Python but not an int on the wire
    return isinstance(value, int) and not isinstance(value, bool)


def is_enum(value, allowed):
    return is_int(value) and value in allowed
