"""Emulator of the Feishu/Lark `security_and_compliance/v2/device_records` API.

The token endpoint, create/list/get/update/delete/mine, gateway auth errors, per-app rate
limits and optimistic versions, as the Feishu Open Platform documents them:
https://open.feishu.cn/document/security_and_compliance-v1/security_and_compliance-v2/device_record/update
(and its siblings create, list, get, delete),
https://open.feishu.cn/document/server-docs/authentication-management/access-token/tenant_access_token_internal,
https://open.feishu.cn/document/server-docs/api-call-guide/generic-error-code and
https://open.feishu.cn/document/server-docs/api-call-guide/frequency-control.
The choices made where the documentation is silent are listed in sandbox/README.md.
"""

import re
import secrets
import time

from sandbox.emulator import GENERIC_FAULT_ACTIONS, Emulator
from sandbox.feishu_answers import (
    DEVICE_EXISTS, INTERNAL_ERROR, INVALID_DEVICE_INFO, INVALID_DEVICE_SYSTEM, INVALID_TENANT_TOKEN, MALFORMED_TOKEN,
    NEED_TOKEN, NOT_AUTHENTICATED_DEVICE, NOT_FOUND, NOT_FOUND_OR_STALE, PARAM_ERROR, RATE_LIMITED, TOKEN_BAD_SECRET,
    TOKEN_INVALID_PARAM, USER_TOKEN_NOT_SUPPORTED, error_answer, gateway_error_answer, has_ownership_and_status, is_int,
    success_answer)
from sandbox.feishu_data import (ALL_IDENTIFIERS, CREATE_STRING_FIELDS, DESKTOP_IDENTIFIERS, DESKTOP_SYSTEMS,
                                 MOBILE_IDENTIFIER, RECORD_ID_BASE, drop_empty, generate_records)
from sandbox.feishu_query import USER_ID_TYPES, matches, parse_filters, render, single
from sandbox.rate_limit import RateLimiter
from sandbox.server import Response, json_response

TOKEN_PATH = "/open-apis/auth/v3/tenant_access_token/internal"
RECORDS_PATH = "/open-apis/security_and_compliance/v2/device_records"

TOKEN_LIFETIME = 7200
TOKEN_REISSUE_BELOW = 1800  # the same token is returned while at least 30 minutes are left

RATE_LIMITS = {"create": 10, "list": 10, "update": 10, "delete": 10, "get": 50, "mine": 50}
DEFAULT_LIMIT_FOR_FAULTS = 10
GATEWAY_TITLES = {502: "502 Bad Gateway", 503: "503 Service Temporarily Unavailable", 504: "504 Gateway Time-out"}


class FeishuSandbox(Emulator):
    name = "feishu"
    fault_actions = GENERIC_FAULT_ACTIONS + ("concurrent_edit",)
    reset_options = ("seed", "records", "rate_limits", "rate_limit_scale")
    ready_fields = ("app_id", "app_secret")

    def __init__(self, records=50, seed=1, rate_limits=True, rate_limit_scale=1.0,
                 app_id="cli_sandbox", app_secret="sandbox-secret"):
        super().__init__(seed=seed, data_size=records,
                         rate_limiter=RateLimiter(RATE_LIMITS, enabled=rate_limits, scale=rate_limit_scale))
        self.app_id = app_id
        self.app_secret = app_secret
        self.records = {}
        self._latest_token = {}  # app_id -> last issued token
        self._page_tokens = {}  # opaque page_token -> last device_record_id of the previous page
        self._next_id = 1
        self.regenerate()
        self._add_routes()
        self._add_control_routes()

    # Python API for tests

    def add_record(self, **fields):
        """Insert a record as is (no validation, duplicates allowed); returns a copy."""
        now = self._now()
        with self.lock:
            record_id = str(fields.pop("device_record_id", None) or self._new_record_id())
            if record_id in self.records:
                raise ValueError(f"record {record_id} already exists")
            record = drop_empty({"device_record_id": record_id, "version": "0", **fields})
            record.setdefault("created_at", now)
            record.setdefault("updated_at", now)
            self.records[record_id] = record
            self._next_id = max(self._next_id, int(record_id) - RECORD_ID_BASE + 1)
            return dict(record)

    def concurrent_edit(self, record_id, **fields):
        """Another writer changes the record: bump its version, touch updated_at, apply fields."""
        with self.lock:
            record = self.records[record_id]
            record.update(fields)
            self._bump(record)
            return dict(record)

    # Emulator hooks

    def regenerate(self):
        self.records = generate_records(self.data_size, self.seed)
        self._next_id = self.data_size + 1
        self._page_tokens.clear()

    def state(self):
        records = [self.records[key] for key in sorted(self.records, key=int)]
        return {"records": records, "count": len(records)}

    def fault_applies(self, rule, request):
        if rule["action"] != "concurrent_edit":
            return True
        record_id = self._record_id_in(request)
        with self.lock:
            return request.method == "PUT" and record_id in self.records

    def apply_fault(self, rule, request):
        if rule["action"] == "concurrent_edit":
            with self.lock:
                record_id = self._record_id_in(request)
                if record_id in self.records:
                    self.concurrent_edit(record_id, **rule.get("fields", {}))

    def fault_status_response(self, rule, request):
        status = rule["status"]
        if status == 429:
            route = self.routes.match(request.method, request.path)[0]
            limit = self.rate_limiter.limit_for(route.name) if route and route.name else None
            return self._rate_limited(limit or DEFAULT_LIMIT_FOR_FAULTS, int(rule.get("reset", 1)))
        if status == 500:
            return error_answer((500, rule.get("code", INTERNAL_ERROR[1]), rule.get("msg", INTERNAL_ERROR[2])))
        if status in (502, 503, 504):
            return self._gateway_page(status)
        return error_answer((status, rule.get("code", status), rule.get("msg", f"sandbox fault {status}")))

    def finish_response(self, request, response):
        log_id = time.strftime("%Y%m%d%H%M%S", time.gmtime()) + secrets.token_hex(9).upper()
        response.headers["X-Tt-Logid"] = log_id
        if isinstance(response.body, dict) and response.body.get("code", 0) != 0:
            response.body["error"] = {"log_id": log_id}

    def api_code(self, response):
        body = response.body
        if isinstance(body, dict) and isinstance(body.get("code"), int):
            return body["code"]
        return None

    def internal_error(self, request, exc):
        return error_answer(INTERNAL_ERROR)

    # routes

    def _add_routes(self):
        add = self.routes.add
        add("POST", re.escape(TOKEN_PATH), self._issue_token, name="token")
        records = re.escape(RECORDS_PATH)
        add("POST", records, self._api("create", self._create), name="create")
        add("GET", records, self._api("list", self._list), name="list")
        add("GET", records + "/mine", self._api("mine", self._mine, token_kind="user"), name="mine")
        # The id is whatever raw text follows the prefix; only an all-digit id can name a record.
        one = records + "/(?P<record_id>.*)"
        add("GET", one, self._api("get", self._get), name="get")
        add("PUT", one, self._api("update", self._update), name="update")
        add("DELETE", one, self._api("delete", self._delete), name="delete")

    def _api(self, operation, handler, token_kind="tenant"):
        """Wrap a business handler with gateway auth, rate limiting and body checks."""

        def endpoint(request):
            caller, auth_error = self._authenticate(request, token_kind)
            if auth_error:
                return auth_error
            decision = self.rate_limiter.check(operation, caller)
            if not decision.allowed:
                return self._rate_limited(decision.limit, decision.reset)
            if request.method in ("POST", "PUT") and request.body and request.media_type() != "application/json":
                response = error_answer(PARAM_ERROR)
            else:
                response = handler(request)
            if decision.limit is not None:
                response.headers["x-ogw-ratelimit-limit"] = str(decision.limit)
            return response

        return endpoint

    def _authenticate(self, request, token_kind):
        """Return (caller key, None) or (None, error response). The gateway's codes are listed on
        https://open.feishu.cn/document/server-docs/api-call-guide/generic-error-code."""
        token = request.bearer_token(bare=True)
        if not token:
            return None, gateway_error_answer(NEED_TOKEN)
        if token.startswith("u-"):
            if token_kind == "tenant":
                return None, gateway_error_answer(USER_TOKEN_NOT_SUPPORTED)
            return "user:" + token, None
        if not token.startswith("t-"):
            return None, gateway_error_answer(MALFORMED_TOKEN)
        if token_kind == "user":
            return None, gateway_error_answer(INVALID_TENANT_TOKEN)
        info = self.tokens.valid(token)
        if info is None:
            return None, gateway_error_answer(INVALID_TENANT_TOKEN)
        return info["app_id"], None

    def _issue_token(self, request):
        payload = request.json_object()
        if payload is None or not all(
            isinstance(payload.get(key), str) and payload.get(key) for key in ("app_id", "app_secret")
        ):
            return error_answer(TOKEN_INVALID_PARAM)
        if payload["app_id"] != self.app_id or payload["app_secret"] != self.app_secret:
            return error_answer(TOKEN_BAD_SECRET)
        with self.lock:
            now = self.clock()
            token = self._latest_token.get(self.app_id)
            info = self.tokens.valid(token) if token else None
            if info is None or info["expires_at"] - now < TOKEN_REISSUE_BELOW:
                # The old token stays valid until its own expiry.
                token = "t-" + secrets.token_hex(20)
                info = self.tokens.add(token, now + TOKEN_LIFETIME, app_id=self.app_id)
                self._latest_token[self.app_id] = token
            expire = int(info["expires_at"] - now)
        return Response(200, {"code": 0, "msg": "ok", "tenant_access_token": token, "expire": expire})

    def _create(self, request):
        payload = request.json_object()
        if payload is None:
            return error_answer(PARAM_ERROR)
        system = payload.get("device_system")
        if not is_int(system):
            return error_answer(PARAM_ERROR)
        if not has_ownership_and_status(payload):
            return error_answer(PARAM_ERROR)
        if any(not isinstance(payload.get(name, ""), str) for name in CREATE_STRING_FIELDS):
            return error_answer(PARAM_ERROR)
        if not isinstance(payload.get("is_public", False), bool):
            return error_answer(PARAM_ERROR)
        if system not in range(1, 7):
            return error_answer(INVALID_DEVICE_SYSTEM)
        identifiers = {name: payload[name] for name in ALL_IDENTIFIERS if payload.get(name)}
        own = DESKTOP_IDENTIFIERS if system in DESKTOP_SYSTEMS else (MOBILE_IDENTIFIER[system],)
        if not identifiers or any(name not in own for name in identifiers):
            return error_answer(INVALID_DEVICE_INFO)
        now = self._now()
        with self.lock:
            for record in self.records.values():
                if record.get("device_system") == system and any(
                    record.get(name) == value for name, value in identifiers.items()
                ):
                    return error_answer(DEVICE_EXISTS)
            record_id = self._new_record_id()
            self.records[record_id] = drop_empty({
                "device_record_id": record_id,
                "version": "0",
                "device_system": system,
                **{name: payload.get(name) for name in CREATE_STRING_FIELDS},
                "device_ownership": payload["device_ownership"],
                "device_status": payload["device_status"],
                "certification_level": 0,
                "device_terminal_type": 2 if system in DESKTOP_SYSTEMS else 1,
                "is_managed": False,
                "created_at": now,
                "updated_at": now,
                "is_public": payload.get("is_public", False),
                "source": 1,  # admin import = pre-registration
            })
        return success_answer({"device_record_id": record_id})

    def _list(self, request):
        query = request.query
        page_size = single(query, "page_size") or "100"
        if not page_size.isdigit() or not 1 <= int(page_size) <= 100:
            return error_answer(PARAM_ERROR)
        user_id_type = single(query, "user_id_type") or "open_id"
        if user_id_type not in USER_ID_TYPES:
            return error_answer(PARAM_ERROR)
        filters = parse_filters(query)
        if filters is None:
            return error_answer(PARAM_ERROR)
        page_token = single(query, "page_token")
        with self.lock:
            after = None
            if page_token:
                if page_token not in self._page_tokens:
                    return error_answer(PARAM_ERROR)
                after = self._page_tokens[page_token]
            matching = [
                record
                for record_id, record in sorted(self.records.items(), key=lambda item: int(item[0]))
                if (after is None or int(record_id) > int(after))
                and matches(record, filters, user_id_type)
            ]
            page = matching[: int(page_size)]
            data = {
                "items": [render(record, user_id_type) for record in page],
                "has_more": len(matching) > len(page),
            }
            if data["has_more"]:
                token = secrets.token_urlsafe(18)
                self._page_tokens[token] = page[-1]["device_record_id"]
                data["page_token"] = token
        return success_answer(data)

    def _get(self, request):
        record_id = self._valid_record_id(request)
        user_id_type = single(request.query, "user_id_type") or "open_id"
        if record_id is None or user_id_type not in USER_ID_TYPES:
            return error_answer(PARAM_ERROR)
        with self.lock:
            record = self.records.get(record_id)
            if record is None:
                return error_answer(NOT_FOUND)
            return success_answer({"device_record": render(record, user_id_type)})

    def _update(self, request):
        record_id = self._valid_record_id(request)
        version = single(request.query, "version")
        payload = request.json_object()
        if record_id is None or not version or payload is None:
            return error_answer(PARAM_ERROR)
        if not has_ownership_and_status(payload):
            return error_answer(PARAM_ERROR)
        if not isinstance(payload.get("is_public", False), bool):
            return error_answer(PARAM_ERROR)
        with self.lock:
            record = self.records.get(record_id)
            if record is None or record["version"] != version:
                return error_answer(NOT_FOUND_OR_STALE)
            record["device_ownership"] = payload["device_ownership"]
            record["device_status"] = payload["device_status"]
            if "is_public" in payload:
                record["is_public"] = payload["is_public"]
            self._bump(record)
        return success_answer({})

    def _delete(self, request):
        record_id = self._valid_record_id(request)
        if record_id is None:
            return error_answer(PARAM_ERROR)
        with self.lock:
            if self.records.pop(record_id, None) is None:
                return error_answer(NOT_FOUND)
        return success_answer({})

    def _mine(self, request):
        # Needs a real client login to resolve the device; the sandbox has none.
        return error_answer(NOT_AUTHENTICATED_DEVICE)

    # control endpoints

    def _add_control_routes(self):
        self.control_routes.add("POST", r"/_sandbox/records", self._control_add_record)

    def _control_add_record(self, request, payload):
        if not isinstance(payload, dict):
            raise ValueError("body must be a JSON object of record fields")
        return json_response(200, self.add_record(**payload))

    # helpers

    def _new_record_id(self):
        record_id = str(RECORD_ID_BASE + self._next_id)
        self._next_id += 1
        return record_id

    def _now(self):
        return int(self.clock())

    def _bump(self, record):
        record["version"] = str(int(record["version"]) + 1)
        # strictly later, so a change within the same second is still visible
        record["updated_at"] = max(self._now(), record.get("updated_at", 0) + 1)

    def _rate_limited(self, limit, reset):
        return error_answer(RATE_LIMITED, **{"x-ogw-ratelimit-limit": str(limit), "x-ogw-ratelimit-reset": str(reset)})

    @staticmethod
    def _gateway_page(status):
        title = GATEWAY_TITLES[status]
        page = (
            f"<html>\r\n<head><title>{title}</title></head>\r\n"
            f"<body>\r\n<center><h1>{title}</h1></center>\r\n</body>\r\n</html>\r\n"
        )
        return Response(status, page, content_type="text/html")

    def _record_id_in(self, request):
        route, params = self.routes.match(request.method, request.path)
        return params.get("record_id") if route else None

    @staticmethod
    def _valid_record_id(request):
        """The raw path segment if it is all digits, else None (never decoded or normalised)."""
        record_id = request.params.get("record_id", "")
        return record_id if re.fullmatch(r"[0-9]+", record_id) else None
