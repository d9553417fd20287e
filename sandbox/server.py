"""Generic machinery shared by the API emulators: a threaded keep-alive HTTP server on
127.0.0.1, requests and responses, a router, a wire log of every API request, run-time fault
rules and a sliding-window rate limiter. The `Emulator` base class that puts them together is
in sandbox/emulator.py.
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
import urllib.parse
from dataclasses import dataclass, field

RULE_KEYS = ("id", "action", "match", "times", "skip")


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

    def json_object(self):
        """The body parsed as a JSON object; None when it is empty, not JSON or not an object."""
        try:
            payload = self.json()
        except ValueError:  # UnicodeDecodeError included
            return None
        return payload if isinstance(payload, dict) else None

    def bearer_token(self, bare=False):
        """The token of an `Authorization: Bearer <token>` header; "" when there is none. With `bare`,
        a header without the Bearer scheme is taken as the token itself."""
        authorization = (self.header("Authorization") or "").strip()
        bearer = re.fullmatch(r"(?i)bearer(?:\s+(.*))?", authorization)
        if bearer:
            return (bearer.group(1) or "").strip()
        return authorization if bare else ""

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
        if action == "answer" and not isinstance(params.get("status", 200), int):
            raise ValueError("an answer fault's 'status' must be an integer")
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
