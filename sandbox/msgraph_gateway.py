"""What every Graph API request of the emulator goes through: the bearer token (401), the
caller's permissions (403), device-write throttling (429), and the envelope of every answer
(request ids, OData and diagnostic headers, error bodies with innerError).

Sources: https://learn.microsoft.com/en-us/graph/errors,
https://learn.microsoft.com/en-us/graph/throttling-limits (identity and access service limits),
https://learn.microsoft.com/en-us/graph/api/device-update (permissions).
"""

import datetime
import json
import urllib.parse
import uuid

from sandbox.msgraph_auth import GRAPH_APP_ID
from sandbox.msgraph_query import ApiError, bad_request
from sandbox.server import Response

# Device writes: per app and tenant for app-only tokens, per user for delegated ones, as
# (requests, window seconds); the device rows of the throttling-limits page.
WRITE_LIMITS = {"app": (3000, 150.0), "user": (25, 10.0)}
THROTTLE_WARNING = 0.8  # x-ms-throttle-limit-percentage appears above this share of the limit

READ_PERMISSIONS = {"Device.Read.All", "Device.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All",
                    "Directory.AccessAsUser.All", "Device.Read"}
APP_WRITE_PERMISSIONS = {"Device.ReadWrite.All", "Directory.ReadWrite.All"}
# Delegated Directory.ReadWrite.All gets 403: https://github.com/microsoftgraph/microsoft-graph-docs/issues/16844
DELEGATED_WRITE_PERMISSIONS = {"Directory.AccessAsUser.All"}
INSUFFICIENT_PRIVILEGES = "Insufficient privileges to complete the operation."
UNREADABLE_JSON = ("Unable to read JSON request payload. Please ensure Content-Type header is set and payload is "
                   "of valid JSON format.")

ODATA_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
DIAGNOSTIC = json.dumps({"ServerInfo": {"DataCenter": "Sandbox", "Slice": "E", "Ring": "5", "ScaleUnit": "000",
                                        "RoleInstance": "SANDBOX01"}}, separators=(",", ":"))
FAULT_ERRORS = {
    429: ("TooManyRequests", "Too many requests."),
    500: ("InternalServerError", "An internal server error occurred."),
    502: ("BadGateway", "The gateway received an invalid response."),
    503: ("serviceNotAvailable", "The service is temporarily unavailable. Please retry."),
    504: ("GatewayTimeout", "The gateway timed out waiting for the service."),
}
KNOWN_SEGMENTS = ("devices", "users", "me", "$batch", "%24batch")


def graph_error(status, code, message, headers=None):
    """A Graph error; finish_graph_response adds innerError with the request ids."""
    return Response(status, {"error": {"code": code, "message": message}}, dict(headers or {}))


def json_body(request):
    """The request's JSON object body; 400 in Graph's words when it is not one."""
    payload = request.json_object() if request.media_type() == "application/json" else None
    if payload is None:
        raise bad_request(UNREADABLE_JSON, code="BadRequest")
    return payload


def utc_now_text():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


class GraphGateway:
    """Mixin of GraphSandbox: authentication, permissions, throttling and the answer envelope.

    Uses from the composed class: `client_id`, `tenant_id`, and the Emulator's `tokens`,
    `rate_limiter`, `routes` and `url`.
    """

    def _graph(self, handler, write=False):
        """Wrap a Graph handler with token validation, permissions and device-write throttling."""

        def endpoint(request):
            try:
                caller = self._authenticate(request)
                self._authorize(caller, write)
                usage = self._count_write(caller) if write else None
                response = handler(request, caller)
            except ApiError as error:
                return graph_error(error.status, error.code, error.message, error.headers)
            if usage is not None:
                response.headers["x-ms-throttle-limit-percentage"] = usage
            return response

        return endpoint

    def _authenticate(self, request):
        token = request.bearer_token()
        if not token:
            raise self._unauthenticated("Access token is empty.")
        info = self.tokens.lookup(token)
        if info is None:
            if token.count(".") != 2:
                raise self._unauthenticated("CompactToken parsing failed with error code: 80049217")
            raise self._unauthenticated("CompactToken validation failed with reason code: 80049228.")
        if self.tokens.expired(info):
            raise self._unauthenticated("Lifetime validation failed, the token is expired.")
        return info["caller"]

    def _unauthenticated(self, message):
        challenge = (f'Bearer realm="", authorization_uri="{self.url}/common/oauth2/authorize", '
                     f'client_id="{GRAPH_APP_ID}"')
        return ApiError(401, "InvalidAuthenticationToken", message, {"WWW-Authenticate": challenge})

    @staticmethod
    def _authorize(caller, write):
        if write:
            needed = APP_WRITE_PERMISSIONS if caller.app else DELEGATED_WRITE_PERMISSIONS
        else:
            needed = READ_PERMISSIONS
        if not caller.permissions & needed:
            raise ApiError(403, "Authorization_RequestDenied", INSUFFICIENT_PRIVILEGES)

    def _count_write(self, caller):
        """Count one device write; raises the 429 when the caller's window is full. Returns the
        x-ms-throttle-limit-percentage value when usage is high, else None."""
        if caller.app:
            operation, key = "app", f"{caller.client_id}/{caller.tenant_id}"
            scope = f"Tenant_Application/ReadWrite/{caller.client_id}/{caller.tenant_id}"
        else:
            operation, key = "user", caller.user_id
            scope = f"Tenant_User/ReadWrite/{caller.tenant_id}/{caller.user_id}"
        decision = self.rate_limiter.check(operation, key)
        if not decision.allowed:
            raise ApiError(429, "TooManyRequests", "Too many requests.", {
                "Retry-After": str(decision.reset),
                "x-ms-throttle-scope": scope,
                "x-ms-throttle-information": "WriteLimitExceeded",
            })
        if decision.limit and decision.used >= THROTTLE_WARNING * decision.limit:
            return f"{decision.used / decision.limit:.1f}"
        return None

    # the answer envelope

    def graph_fault_response(self, rule, headers):
        """A `status` fault on a Graph path: a Graph error body (429s with the throttle headers)."""
        status = rule["status"]
        if status == 429:
            headers["x-ms-throttle-scope"] = f"Tenant_Application/ReadWrite/{self.client_id}/{self.tenant_id}"
            headers["x-ms-throttle-information"] = rule.get("throttle_information", "WriteLimitExceeded")
        code, message = FAULT_ERRORS.get(status, (f"Status{status}", f"Sandbox fault {status}."))
        return graph_error(status, rule.get("code", code), rule.get("message", message), headers)

    def finish_graph_response(self, request, response):
        request_id, client_request_id = self._request_ids(request)
        if request.context.get("batch_item") is None:  # sub-responses carry only their own headers
            response.headers.update({
                "request-id": request_id,
                "client-request-id": client_request_id,
                "x-ms-ags-diagnostic": DIAGNOSTIC,
                "Strict-Transport-Security": "max-age=31536000",
            })
        body = response.body
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            body["error"]["innerError"] = {"date": utc_now_text(), "request-id": request_id,
                                           "client-request-id": client_request_id}
            response.content_type = response.content_type or "application/json"
        elif isinstance(body, (dict, list)):
            response.content_type = response.content_type or ODATA_JSON
            response.headers["OData-Version"] = "4.0"
        if 200 <= response.status < 300:
            response.headers.setdefault("Cache-Control", "no-cache")
            response.headers["x-ms-resource-unit"] = "1"

    def _request_ids(self, request):
        """(request-id, client-request-id): one pair per top-level request, shared by its batch items."""
        if "request_id" not in request.context:
            request_id = str(uuid.uuid4())
            request.context["request_id"] = request_id
            request.context["client_request_id"] = request.header("client-request-id") or request_id
        return request.context["request_id"], request.context["client_request_id"]

    def api_code(self, response):
        body = response.body
        if not isinstance(body, dict):
            return None
        if isinstance(body.get("error"), dict):
            return body["error"].get("code")
        if body.get("error_codes"):
            return f"AADSTS{body['error_codes'][0]}"
        if isinstance(body.get("error"), str):  # the instance metadata service's {"error", "error_description"}
            return body["error"]
        return None

    def internal_error(self, request, exc):
        return graph_error(500, "InternalServerError", f"An internal server error occurred: {exc}")

    def not_found(self, request):
        if self.routes.methods_for(request.path):
            return graph_error(405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.")
        segments = request.path.split("/")[1:] or [""]
        if segments[0] not in ("v1.0", "beta"):
            return graph_error(400, "BadRequest", f"Invalid version: {urllib.parse.unquote(segments[0])}")
        rest = [segment for segment in segments[1:] if segment] or [""]
        segment = rest[0] if rest[0] not in KNOWN_SEGMENTS else rest[-1]
        return graph_error(400, "BadRequest", f"Resource not found for the segment '{urllib.parse.unquote(segment)}'.")
