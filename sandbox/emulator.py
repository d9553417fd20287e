"""The base class of every API emulator: the request pipeline and what all emulators share.

An emulator subclasses `Emulator`, registers its routes and gets for free: the HTTP server, a
wire log of every API request, run-time fault injection, a sliding-window rate limiter, a ledger
of the tokens it issues, regeneration of its data (`reset`) and the `/_sandbox/` control endpoints.
The parts are in sandbox/server.py and sandbox/tokens.py.
"""

import abc
import copy
import http
import threading
import time
import traceback

from sandbox.faults import FaultPlan
from sandbox.rate_limit import RateLimiter
from sandbox.server import Response, Router, SandboxHTTPServer, json_response
from sandbox.tokens import TokenLedger
from sandbox.wire_log import WireLog

CONTROL_PREFIX = "/_sandbox/"

# Fault actions every emulator understands; subclasses add their own in `fault_actions`.
GENERIC_FAULT_ACTIONS = ("status", "reset", "reset_after_apply", "latency", "expire_tokens", "answer")
ABORTING_FAULTS = ("reset", "reset_after_apply")  # the connection is dropped instead of answered


def canned_answer(rule):
    """The response of an `answer` fault, verbatim: what no API should send (an HTML page under 200, truncated
    JSON, a body of the wrong shape, a redirect), so clients can be tried against it. The request is not
    handled. `body` (JSON for a dict or list, else sent as is), `status` (200), `headers`, `content_type`."""
    return Response(rule.get("status", 200), copy.deepcopy(rule.get("body")), dict(rule.get("headers") or {}),
                    rule.get("content_type"))


class Emulator(abc.ABC):
    """Base class of one emulated API.

    The request pipeline (`process`) is: `/_sandbox/` control calls are answered directly;
    otherwise a fault rule may fire, then the request is routed and answered, and the
    exchange is appended to the wire log. Subclasses register routes on `self.routes`
    and `self.control_routes`, implement `regenerate` and `state`, and override the hooks below.

    The data an emulator serves is generated from (`seed`, `data_size`); `reset` regenerates it.
    """

    name = "emulator"
    fault_actions = GENERIC_FAULT_ACTIONS
    fault_match_keys = ()  # extra keys a rule's `match` may hold, checked in `fault_applies`
    # The names reset() and POST /_sandbox/reset take for: the seed, the data size, the rate
    # limiter on or off, and the rate limits' scale. Subclasses spell them as their constructor does.
    reset_options = ("seed", "size", "rate_limits", "rate_limit_scale")
    ready_fields = ()  # attributes `python -m sandbox` prints beside the URL (what a client needs to log in)

    def __init__(self, seed=1, data_size=0, rate_limiter=None):
        self.lock = threading.RLock()
        self.seed = seed
        self.data_size = data_size  # how many items (records, devices) regenerate() makes
        self.rate_limiter = rate_limiter or RateLimiter({}, enabled=False)
        self.clock = time.time  # replaceable in tests to age tokens
        self.tokens = TokenLedger(self.current_time)
        self.wire = WireLog()
        self.faults = FaultPlan(self.fault_actions, self.fault_match_keys)
        self.routes = Router()
        self.control_routes = Router()
        self.server = None
        # Seconds every API request waits before it is handled, as a network and a real service would add
        # (benchmarks/run.py measures against 30 ms); control routes answer at once.
        self.latency = 0.0
        self._add_generic_control_routes()

    # data and tokens

    @abc.abstractmethod
    def regenerate(self):
        """Replace the emulated data with what (`seed`, `data_size`) generates; called with the lock held."""

    @abc.abstractmethod
    def state(self):
        """The emulated data as GET /_sandbox/state shows it; called with the lock held, copied by the caller."""

    def reset(self, **options):
        """Regenerate the data, switch or scale the rate limiter (options named in `reset_options`,
        each optional); clears fault rules and rate windows. Tokens and the wire log survive."""
        unknown = set(options) - set(self.reset_options)
        if unknown:
            raise TypeError(f"unknown reset keys: {', '.join(sorted(unknown))}")
        seed, size, enabled, scale = (options.get(name) for name in self.reset_options)
        with self.lock:
            if seed is not None:
                self.seed = seed
            if size is not None:
                self.data_size = size
            self.regenerate()
        self.rate_limiter.configure(enabled=enabled, scale=scale)
        self.faults.clear()

    def reset_settings(self):
        """The values of the reset options now, named as in `reset_options`."""
        values = (self.seed, self.data_size, self.rate_limiter.enabled, self.rate_limiter.scale)
        return dict(zip(self.reset_options, values))

    def current_time(self):
        """`self.clock()`, looked up at each call, so that a test may replace `clock`."""
        return self.clock()

    def expire_tokens(self):
        """Make every issued access token expired; returns how many were still valid."""
        return self.tokens.expire_all()

    def issued_tokens(self):
        """Every access token issued so far, expired ones included."""
        return self.tokens.issued()

    # lifecycle

    def start(self, port=0, host="127.0.0.1", verbose=False):
        if self.server is None:
            self.server = SandboxHTTPServer(self, host, port, verbose).start()
        return self

    def stop(self):
        if self.server is not None:
            self.server.stop()
            self.server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    @property
    def url(self):
        return self.server.url if self.server else None

    @property
    def connection_count(self):
        """TCP connections accepted since start (keep-alive reuses one)."""
        return self.server.connection_count if self.server else 0

    def ready_info(self):
        """What `python -m sandbox` prints once this emulator listens."""
        return {self.name: self.url, **{name: getattr(self, name) for name in self.ready_fields}}

    # pipeline

    def process(self, request):
        """Answer one request. Returns (response or None, abort connection?)."""
        if request.path.startswith(CONTROL_PREFIX):
            return self._handle_control(request), False
        if self.latency:
            time.sleep(self.latency)
        response, fault = self.run(request)
        return response, fault in ABORTING_FAULTS or request.abort

    def run(self, request):
        """Fault, route, answer and log one API request; also used for requests nested in
        another one (e.g. the parts of a batch). Returns (response or None, fault action)."""
        rule = self.faults.take(request, self.fault_applies)
        fault = rule["action"] if rule else None
        try:
            response = self._answer(rule, request)
        except Exception as exc:  # an emulator bug must still produce an answer
            if self.server is not None and self.server.verbose:
                traceback.print_exc()
            response = self.internal_error(request, exc)
        if request.abort:
            response = None  # a nested request dropped the connection: nothing was answered
        if response is not None:
            self.finish_response(request, response)
        self.wire.append(
            request,
            status=response.status if response else None,
            api_code=self.api_code(response) if response else None,
            fault=fault,
            extra=self.wire_fields(request),
        )
        return response, fault

    def _answer(self, rule, request):
        """The answer to a request under a fault rule (or none): None when the connection is reset."""
        fault = rule["action"] if rule else None
        if fault == "latency":
            time.sleep(float(rule.get("seconds", 1)))
        elif fault == "expire_tokens":
            self.expire_tokens()
        elif fault not in (None,) + GENERIC_FAULT_ACTIONS:
            self.apply_fault(rule, request)
        if fault == "status":
            return self.fault_status_response(rule, request)
        if fault == "answer":
            return canned_answer(rule)
        return None if fault == "reset" else self.handle(request)

    def handle(self, request):
        route, params = self.routes.match(request.method, request.path)
        if route is None:
            return self.not_found(request)
        request.params = params
        return route.handler(request)

    # hooks for subclasses

    def not_found(self, request):
        return Response(404, "404 page not found")

    def fault_applies(self, rule, request):
        """Whether a rule whose match fits may fire for this request."""
        return True

    def apply_fault(self, rule, request):
        """Run an emulator-specific fault action before the request is handled."""
        raise ValueError("this emulator has no fault action %r" % rule["action"])

    def fault_status_response(self, rule, request):
        return Response(rule["status"], rule.get("body", http.HTTPStatus(rule["status"]).phrase))

    def finish_response(self, request, response):
        """Last touch on every API response (e.g. request-id headers); an emulator without one leaves it."""
        return None

    def api_code(self, response):
        return None

    def wire_fields(self, request):
        """Extra fields for this request's wire log entry."""
        return None

    def internal_error(self, request, exc):
        return Response(500, f"internal error: {exc}")

    # control endpoints

    def _handle_control(self, request):
        route, params = self.control_routes.match(request.method, request.path)
        if route is None:
            return json_response(404, {"error": f"no control endpoint {request.method} {request.path}"})
        request.params = params
        try:
            payload = request.json() if request.body else None
        except ValueError:
            return json_response(400, {"error": "body must be JSON"})
        try:
            return route.handler(request, payload)
        except (ValueError, TypeError) as exc:
            return json_response(400, {"error": str(exc)})

    def _add_generic_control_routes(self):
        add = self.control_routes.add
        add("GET", r"/_sandbox/wire", self._control_get_wire)
        add("DELETE", r"/_sandbox/wire", lambda request, payload: json_response(200, {"cleared": self.wire.clear()}))
        add("GET", r"/_sandbox/faults", lambda request, payload: json_response(200, {"faults": self.faults.rules()}))
        add("POST", r"/_sandbox/faults", self._control_add_faults)
        add("DELETE", r"/_sandbox/faults", self._control_clear_faults)
        add("GET", r"/_sandbox/state", self._control_state)
        add("POST", r"/_sandbox/reset", self._control_reset)
        add("POST", r"/_sandbox/expire_tokens", self._control_expire_tokens)

    def _control_get_wire(self, request, payload):
        since = int(request.query.get("since") or 0)
        entries = self.wire.entries(since=since)
        last_seq = entries[-1]["seq"] if entries else since
        return json_response(200, {"entries": entries, "last_seq": last_seq})

    def _control_add_faults(self, request, payload):
        return json_response(200, {"faults": self.faults.add_many(payload)})

    def _control_clear_faults(self, request, payload):
        return json_response(200, {"cleared": self.faults.clear()})

    def _control_state(self, request, payload):
        with self.lock:
            return json_response(200, copy.deepcopy(self.state()))

    def _control_reset(self, request, payload):
        self.reset(**(payload or {}))
        return json_response(200, self.reset_settings())

    def _control_expire_tokens(self, request, payload):
        return json_response(200, {"expired": self.expire_tokens()})
