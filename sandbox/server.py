"""Generic machinery shared by the API emulators.

An emulator subclasses `Emulator`, registers its routes and gets for free: a threaded
keep-alive HTTP server on 127.0.0.1, a wire log of every API request, run-time fault
injection, a sliding-window rate limiter and the `/_sandbox/` control endpoints.
"""

import collections
import copy
import http.server
import itertools
import json
import math
import re
import socket
import socketserver
import struct
import sys
import threading
import time
import traceback
import urllib.parse
from dataclasses import dataclass, field

CONTROL_PREFIX = "/_sandbox/"

# Fault actions every emulator understands; subclasses add their own in `fault_actions`.
GENERIC_FAULT_ACTIONS = ("status", "reset", "reset_after_apply", "latency")
RULE_KEYS = ("id", "action", "match", "times", "skip")
ABORTING_FAULTS = ("reset", "reset_after_apply")  # the connection is dropped instead of answered


def split_target(target):
    """Split a raw request-target into (raw path, raw query string). Nothing is decoded."""
    path, _separator, query_string = target.partition("?")
    return path, query_string


def parse_query(query_string):
    """Decode a query string; a parameter given once maps to its value, else to a list."""
    parsed = urllib.parse.parse_qs(query_string, keep_blank_values=True)
    return {name: values[0] if len(values) == 1 else values for name, values in parsed.items()}


@dataclass
class Request:
    method: str
    target: str  # request-target exactly as received
    path: str  # raw path without the query, never decoded or normalised
    query: dict
    headers: dict
    body: bytes
    connection_id: int
    params: dict = field(default_factory=dict)  # named groups of the matched route
    context: dict = field(default_factory=dict)  # what an emulator keeps about this request while answering it
    abort: bool = False  # set by a handler to drop the connection instead of answering

    def header(self, name, default=None):
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return default

    def media_type(self):
        """Content-Type without parameters, lower case ("" when absent)."""
        return (self.header("Content-Type") or "").split(";")[0].strip().lower()

    def json(self):
        """The body parsed as JSON; raises ValueError when it is not valid JSON."""
        return json.loads(self.body.decode("utf-8"))

    def body_for_log(self):
        if not self.body:
            return None
        try:
            return self.json()
        except ValueError:
            return self.body.decode("utf-8", errors="replace")


@dataclass
class Response:
    status: int
    body: object = None  # dict/list -> JSON, str/bytes -> sent as is
    headers: dict = field(default_factory=dict)
    content_type: str = None

    def encode(self):
        """Return (payload bytes, content type or None)."""
        if self.body is None:
            return b"", self.content_type
        if isinstance(self.body, (dict, list)):
            payload = json.dumps(self.body, ensure_ascii=False, separators=(",", ":"))
            return payload.encode("utf-8"), self.content_type or "application/json; charset=utf-8"
        if isinstance(self.body, str):
            return self.body.encode("utf-8"), self.content_type or "text/plain; charset=utf-8"
        return bytes(self.body), self.content_type or "application/octet-stream"


def json_response(status, body, **headers):
    return Response(status, body, dict(headers))


@dataclass
class Route:
    method: str
    pattern: re.Pattern
    handler: object
    name: str = None


class Router:
    """First match wins: register specific paths before catch-alls."""

    def __init__(self):
        self.routes = []

    def add(self, method, pattern, handler, name=None):
        self.routes.append(Route(method.upper(), re.compile(pattern), handler, name))

    def match(self, method, path):
        """Return (route, path params) for a raw path, or (None, {})."""
        for route in self.routes:
            found = route.pattern.fullmatch(path)
            if found and route.method == method:
                return route, found.groupdict()
        return None, {}

    def methods_for(self, path):
        """Methods some route accepts for this raw path (to tell 405 from 404)."""
        return sorted({route.method for route in self.routes if route.pattern.fullmatch(path)})


class WireLog:
    """Thread-safe, append-only record of the API requests an emulator answered."""

    def __init__(self):
        self._lock = threading.Lock()
        self._entries = []
        self._seq = itertools.count(1)

    def append(self, request, status, api_code, fault, extra=None):
        entry = {
            "seq": None,
            "time": time.time(),
            "method": request.method,
            "path": request.path,
            "query": request.query,
            "headers": dict(request.headers),
            "body": request.body_for_log(),
            "status": status,
            "api_code": api_code,
            "fault": fault,
            "connection": request.connection_id,
            **(extra or {}),
        }
        with self._lock:
            entry["seq"] = next(self._seq)
            self._entries.append(entry)
        return entry

    def entries(self, method=None, path_regex=None, since=0):
        """Copies of the entries, optionally filtered by method, path (re.search) and seq > since."""
        pattern = re.compile(path_regex) if path_regex else None
        with self._lock:
            selected = [
                entry
                for entry in self._entries
                if entry["seq"] > since
                and (method is None or entry["method"] == method.upper())
                and (pattern is None or pattern.search(entry["path"]))
            ]
            return copy.deepcopy(selected)

    def clear(self):
        """Forget all entries; sequence numbers keep counting so `since` polling stays valid."""
        with self._lock:
            count = len(self._entries)
            self._entries.clear()
        return count

    def __len__(self):
        with self._lock:
            return len(self._entries)


class FaultPlan:
    """Fault rules added at run time. Rules are checked in the order they were added and at
    most one fires per request; a matching rule first lets `skip` requests through, then
    fires `times` times and is removed."""

    def __init__(self, actions, extra_match_keys=()):
        self.actions = tuple(actions)
        # Emulator-specific match keys: accepted here, evaluated by the emulator's `fault_applies`.
        self.match_keys = ("method", "path_regex") + tuple(extra_match_keys)
        self._lock = threading.Lock()
        self._rules = []
        self._ids = itertools.count(1)

    def add(self, action, match=None, times=1, skip=0, **params):
        if action not in self.actions:
            raise ValueError(f"unknown fault action {action!r}; known: {', '.join(self.actions)}")
        match = dict(match or {})
        unknown = set(match) - set(self.match_keys)
        if unknown:
            raise ValueError(f"unknown match keys: {', '.join(sorted(unknown))}")
        if "path_regex" in match:
            re.compile(match["path_regex"])
        if "method" in match:
            match["method"] = str(match["method"]).upper()
        if not isinstance(times, int) or times < 1:
            raise ValueError("times must be an integer >= 1")
        if not isinstance(skip, int) or skip < 0:
            raise ValueError("skip must be an integer >= 0")
        if action == "status" and not isinstance(params.get("status"), int):
            raise ValueError("a status fault needs an integer 'status' parameter")
        rule = {"id": next(self._ids), "action": action, "match": match, "times": times, "skip": skip}
        rule.update(params)
        with self._lock:
            self._rules.append(rule)
        return dict(rule)

    def add_many(self, spec):
        """Add one rule (dict) or several (list of dicts), as posted to /_sandbox/faults."""
        specs = spec if isinstance(spec, list) else [spec]
        if not all(isinstance(item, dict) and "action" in item for item in specs):
            raise ValueError("a fault rule is an object with at least an 'action'")
        return [self.add(**{key: value for key, value in item.items() if key != "id"}) for item in specs]

    def take(self, request, applies=None):
        """Consume and return the rule that fires for this request, or None."""
        with self._lock:
            for rule in self._rules:
                if not self._matches(rule["match"], request):
                    continue
                if applies is not None and not applies(rule, request):
                    continue
                if rule["skip"] > 0:
                    rule["skip"] -= 1
                    continue
                rule["times"] -= 1
                if rule["times"] == 0:
                    self._rules.remove(rule)
                return dict(rule)
        return None

    @staticmethod
    def _matches(match, request):
        if "method" in match and match["method"] != request.method:
            return False
        if "path_regex" in match and not re.search(match["path_regex"], request.path):
            return False
        return True

    def rules(self):
        with self._lock:
            return copy.deepcopy(self._rules)

    def clear(self):
        with self._lock:
            count = len(self._rules)
            self._rules.clear()
        return count


@dataclass
class RateDecision:
    allowed: bool
    limit: int = None  # None when the operation is not limited
    reset: int = 0  # whole seconds until a slot frees up (only when not allowed)
    used: int = 0  # calls counted in the window, this one included (only when allowed)


class RateLimiter:
    """Sliding window per (operation, caller key). Rejected calls do not count.

    A limit is either a count per `WINDOW` seconds or a (count, window seconds) pair;
    `scale` multiplies the counts, never the windows.
    """

    WINDOW = 1.0

    def __init__(self, limits, enabled=True, scale=1.0):
        self.base_limits = dict(limits)
        self.enabled = enabled
        self.scale = scale
        self._lock = threading.Lock()
        self._windows = collections.defaultdict(collections.deque)

    def limit_for(self, operation):
        return self._limit_and_window(operation)[0]

    def window_for(self, operation):
        return self._limit_and_window(operation)[1]

    def _limit_and_window(self, operation):
        base = self.base_limits.get(operation)
        if base is None:
            return None, None
        count, window = base if isinstance(base, (tuple, list)) else (base, self.WINDOW)
        return max(1, int(count * self.scale)), float(window)

    def check(self, operation, key):
        limit, window_seconds = self._limit_and_window(operation)
        if not self.enabled or limit is None:
            return RateDecision(True)
        now = time.monotonic()
        with self._lock:
            window = self._windows[(operation, key)]
            while window and window[0] <= now - window_seconds:
                window.popleft()
            if len(window) >= limit:
                reset = max(1, math.ceil(window[0] + window_seconds - now))
                return RateDecision(False, limit, reset)
            window.append(now)
            used = len(window)
        return RateDecision(True, limit, used=used)

    def configure(self, enabled=None, scale=None, limits=None):
        if enabled is not None:
            self.enabled = bool(enabled)
        if scale is not None:
            self.scale = float(scale)
        if limits is not None:
            self.base_limits.update(limits)
        self.clear()

    def clear(self):
        with self._lock:
            self._windows.clear()


class SandboxRequestHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every response carries Content-Length
    server_version = "sandbox"
    timeout = 120  # drop idle keep-alive connections eventually
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid delayed-ACK stalls

    def setup(self):
        super().setup()
        self.connection_id = self.server.register_connection(self.connection)
        self.aborted = False

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.unregister_connection(self.connection)
            if self.aborted:
                # rfile is closed now, so this really closes the socket and SO_LINGER 0 sends RST.
                self.connection.close()

    def version_string(self):
        return self.server_version

    def log_message(self, format, *args):
        """Silence http.server's own stderr logging; see `_log`."""

    def do_GET(self):
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def _dispatch(self):
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            self._send(Response(400, "malformed request body\n"))
            return
        path, query_string = split_target(self.path)
        request = Request(
            method=self.command,
            target=self.path,
            path=path,
            query=parse_query(query_string),
            headers=dict(self.headers.items()),
            body=body,
            connection_id=self.connection_id,
        )
        response, abort = self.server.emulator.process(request)
        self._log(request, response, abort)
        if abort:
            self._abort_connection()
        else:
            self._send(response)

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        size = int(length)
        if size < 0:
            raise ValueError("negative Content-Length")
        return self.rfile.read(size)

    def _read_chunked(self):
        chunks = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _send(self, response):
        payload, content_type = response.encode()
        self.send_response(response.status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers.items():
            self.send_header(name, str(value))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _abort_connection(self):
        """Drop the connection without answering; the socket is closed in finish()."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.aborted = True
        self.close_connection = True

    def _log(self, request, response, abort):
        if not self.server.verbose:
            return
        # Method, raw path and outcome only: headers (Authorization) and bodies never go to logs.
        status = "reset" if abort else response.status
        sys.stderr.write(
            f"{time.strftime('%H:%M:%S')} [{self.server.emulator.name}] conn={request.connection_id} "
            f"{request.method} {request.path} -> {status}\n"
        )
        sys.stderr.flush()


class SandboxHTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, emulator, host="127.0.0.1", port=0, verbose=False):
        self.emulator = emulator
        self.verbose = verbose
        self.connection_count = 0
        self._open_connections = set()
        self._connections_lock = threading.Lock()
        self._thread = None
        super().__init__((host, port), SandboxRequestHandler)

    def server_bind(self):
        # HTTPServer.server_bind calls getfqdn(), which can stall on reverse DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    @property
    def url(self):
        return f"http://{self.server_name}:{self.server_port}"

    def register_connection(self, sock):
        with self._connections_lock:
            self.connection_count += 1
            self._open_connections.add(sock)
            return self.connection_count

    def unregister_connection(self, sock):
        with self._connections_lock:
            self._open_connections.discard(sock)

    def start(self):
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.01}, name=f"{self.emulator.name}-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def stop(self):
        self.shutdown()
        with self._connections_lock:
            open_connections = list(self._open_connections)
        for sock in open_connections:  # wake handler threads idling on keep-alive reads
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


class Emulator:
    """Base class of one emulated API.

    The request pipeline (`process`) is: `/_sandbox/` control calls are answered directly;
    otherwise a fault rule may fire, then the request is routed and answered, and the
    exchange is appended to the wire log. Subclasses register routes on `self.routes`
    and `self.control_routes` and override the hooks below.
    """

    name = "emulator"
    fault_actions = GENERIC_FAULT_ACTIONS
    fault_match_keys = ()  # extra keys a rule's `match` may hold, checked in `fault_applies`

    def __init__(self):
        self.lock = threading.RLock()
        self.wire = WireLog()
        self.faults = FaultPlan(self.fault_actions, self.fault_match_keys)
        self.routes = Router()
        self.control_routes = Router()
        self.server = None
        self._add_generic_control_routes()

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
        return {self.name: self.url}

    # pipeline

    def process(self, request):
        """Answer one request. Returns (response or None, abort connection?)."""
        if request.path.startswith(CONTROL_PREFIX):
            return self._handle_control(request), False
        response, fault = self.run(request)
        return response, fault in ABORTING_FAULTS or request.abort

    def run(self, request):
        """Fault, route, answer and log one API request; also used for requests nested in
        another one (e.g. the parts of a batch). Returns (response or None, fault action)."""
        rule = self.faults.take(request, self.fault_applies)
        fault = rule["action"] if rule else None
        response = None
        try:
            if fault == "latency":
                time.sleep(float(rule.get("seconds", 1)))
            elif fault not in (None,) + GENERIC_FAULT_ACTIONS:
                self.apply_fault(rule, request)
            if fault == "status":
                response = self.fault_status_response(rule, request)
            elif fault != "reset":
                response = self.handle(request)
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
        """Last touch on every API response (e.g. request-id headers)."""

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

    def _control_get_wire(self, request, payload):
        since = int(request.query.get("since") or 0)
        entries = self.wire.entries(since=since)
        last_seq = entries[-1]["seq"] if entries else since
        return json_response(200, {"entries": entries, "last_seq": last_seq})

    def _control_add_faults(self, request, payload):
        return json_response(200, {"faults": self.faults.add_many(payload)})

    def _control_clear_faults(self, request, payload):
        return json_response(200, {"cleared": self.faults.clear()})
