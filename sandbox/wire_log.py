"""The wire log: every API request an emulator answered, with its status, API code and fault, for tests
to read (`GET /_sandbox/requests`)."""


import copy
import itertools
import re
import threading
import time


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
