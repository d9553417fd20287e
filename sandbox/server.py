"""The HTTP layer shared by the API emulators: a threaded keep-alive HTTP server on 127.0.0.1,
requests and responses, and a router. The wire log (sandbox/wire_log.py), fault rules
(sandbox/faults.py) and rate limiter (sandbox/rate_limit.py) sit beside it; the `Emulator` base
class that puts them together is in sandbox/emulator.py.
"""


import http.server
import json
import re
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field


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
