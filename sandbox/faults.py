"""Fault rules added at run time (`POST /_sandbox/faults`): which request a fault fires on, how often, and
after how many matching requests. What each action does to the answer is the emulator's business
(sandbox/emulator.py)."""


import copy
import itertools
import re
import threading


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
