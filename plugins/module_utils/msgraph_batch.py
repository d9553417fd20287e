# -*- coding: utf-8 -*-
# Copyright: (c) 2026, fleetguard.devices contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# FOR INTERNAL COLLECTION USE ONLY: the interfaces here may change in any release, even a bugfix release.
"""Graph's JSON batching: sub-requests in `POST /$batch` calls of 20, each answer read and checked.

A part the retry policy (retry_policy.py) says to send again goes out in the next round, with the other
parts to resend, after the longest wait among them (spent by pausing the quota, so every worker holds back).
Parts count against the read and write quotas one by one, as Graph counts them. A lost answer to a call of
writes comes back as an error with `maybe_applied` for every part: the caller re-reads before writing again.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import random
import uuid

from ansible_collections.fleetguard.devices.plugins.module_utils.bulk import run_each
from ansible_collections.fleetguard.devices.plugins.module_utils.errors import ApiError, TransientError, shown
from ansible_collections.fleetguard.devices.plugins.module_utils.retry_policy import MAX_RETRY_AFTER, is_write

BATCH_LIMIT = 20
# A round of resends waits for its longest part's wait plus up to this much, so that workers do not all start at once.
ROUND_JITTER = 0.05
JSON_HEADERS = {"Content-Type": "application/json"}


class SubResponse:
    """The answer to one sub-request of a batch: `status` (None when the answer was lost), `headers`,
    `body`, and the `error` it means when it failed (None on success)."""

    __slots__ = ("status", "headers", "body", "error")

    def __init__(self, status, headers, body, error=None):
        self.status = status
        self.headers = headers
        self.body = body
        self.error = error


def one_at_a_time(items, work):
    """The runner when the caller gives none: bulk.run_each on the calling thread."""
    return run_each(items, work, workers=1)


class GraphBatch:
    """The `$batch` calls of one GraphClient: its token, its error bodies, its transport's quotas and retry policy."""

    def __init__(self, client):
        self.client = client
        self.transport = client.transport

    def send(self, requests, each=None):
        """Send requests (dicts with id, method, url relative to the version, optional body/headers) in calls of
        BATCH_LIMIT; `each(chunks, work)` runs the calls (bulk.run_each on the directory's workers, or one by one).

        Returns {id: SubResponse} for every request, the error already built for a failure.
        """
        each = each or one_at_a_time
        results = {}
        pending = list(requests)
        attempt = 0
        while pending:
            chunks = [pending[start:start + BATCH_LIMIT] for start in range(0, len(pending), BATCH_LIMIT)]
            resend, waits = [], []
            for sent in each(chunks, self._send_chunk):
                if sent.error is not None:
                    raise sent.error
                for request in sent.item:
                    self._sort(request, sent.value[request["id"]], attempt, results, resend, waits)
            if resend:
                self._hold_back(resend, waits)
            attempt += 1
            pending = resend
        return results

    def _sort(self, request, answer, attempt, results, resend, waits):
        """Put one part's answer into `results`, or into `resend` with its wait, as the retry policy decides."""
        decision = self.transport.retry.decide(answer.status, answer.headers, attempt, is_write(request["method"]),
                                               token_renewed=answer.status == 401 and self.client.tokens.can_refresh)
        if decision.retry:
            resend.append(request)
            waits.append(decision.wait)
            return
        if decision.too_long is not None:
            answer.error.message += (" (the server asked to wait %d s, more than the %d s a task waits;"
                                     " run the task again later)" % (decision.too_long, MAX_RETRY_AFTER))
        results[request["id"]] = answer

    def _hold_back(self, resend, waits):
        """Pause the quotas of the parts to resend: the next acquire() waits, and nothing sleeps twice."""
        longest = max(waits)
        wait = longest + random.uniform(0, ROUND_JITTER) if longest > 0 else 0.0
        for quota in sorted(set(self.client.quota_of(request["method"]) for request in resend)):
            self.transport.pause(quota, wait)

    def _send_chunk(self, chunk):
        """One call, and a new token when a part says the one it carried expired."""
        token = self.client.tokens.get()
        answers = self._post(chunk)
        if self.client.tokens.can_refresh and any(answer.status == 401 for answer in answers.values()):
            self.client.tokens.replace(token)
        return answers

    def _post(self, chunk):
        """One POST /$batch: {id: SubResponse}. Throttling counts every part, so the quotas are charged per part."""
        charges = {}
        for request in chunk:
            quota = self.client.quota_of(request["method"])
            charges[quota] = charges.get(quota, 0) + 1
        writes = any(is_write(request["method"]) for request in chunk)
        client_request_id = str(uuid.uuid4())
        try:
            body = self.client.send("POST", "/$batch", body=dict(requests=[batch_item(r) for r in chunk]),
                                    quota=charges, idempotent=not writes, client_request_id=client_request_id).json
        except TransientError as exc:
            if not exc.maybe_applied:
                raise
            # The answer to a batch of writes was lost: every part may or may not have landed.
            return dict((r["id"], SubResponse(None, {}, None, TransientError(
                exc.message, maybe_applied=True, method=r["method"], path=path_of(r),
                client_request_id=client_request_id))) for r in chunk)
        items = _answer_items(chunk, body, client_request_id)
        answers = {}
        for request in chunk:
            answers[request["id"]] = self._answer(request, items[request["id"]], client_request_id)
            self.transport.observe_usage(self.client.quota_of(request["method"]), answers[request["id"]].headers)
        return answers

    def _answer(self, request, item, client_request_id):
        """The SubResponse of one part, its error built from Graph's error body or from a body that is no device."""
        status = item.get("status")
        headers = item.get("headers") if isinstance(item.get("headers"), dict) else {}
        body = item.get("body")
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise ApiError("Graph answered sub-request %s of the $batch call with the status %s"
                           % (request["id"], shown(status)), method="POST", path="/$batch",
                           client_request_id=client_request_id)
        if status >= 400:
            error = self.client.error(status, body, headers, request["method"], path_of(request), client_request_id)
            return SubResponse(status, headers, body, error)
        problem = read_shape_problem(body) if request["method"] == "GET" else None
        error = None
        if problem:
            error = ApiError("Graph answered with a body this collection does not understand: %s" % problem,
                             method="GET", path=path_of(request), status=status, client_request_id=client_request_id)
        return SubResponse(status, headers, body, error)


def _answer_items(chunk, body, client_request_id):
    """{part id: its answer} of a $batch answer, every part of `chunk` answered."""
    if not isinstance(body, dict) or not isinstance(body.get("responses"), list):
        raise ApiError("Graph answered the $batch call without a list of responses", method="POST",
                       path="/$batch", status=200, client_request_id=client_request_id)
    items = dict((str(item.get("id")), item) for item in body["responses"] if isinstance(item, dict))
    missing = [r["id"] for r in chunk if r["id"] not in items]
    if missing:
        raise ApiError("the $batch answer lacks responses for %s" % ", ".join(missing),
                       method="POST", path="/$batch", client_request_id=client_request_id)
    return items


def read_shape_problem(body):
    """What is wrong with the body of a successful read (one object, or a page with a `value` list of objects),
    or None."""
    if not isinstance(body, dict):
        return "the body is %s, not an object" % type(body).__name__
    if "value" in body and not (isinstance(body["value"], list) and all(isinstance(v, dict) for v in body["value"])):
        return "its value is not a list of objects"
    return None


def path_of(request):
    return request["url"].split("?", 1)[0]


def batch_item(request):
    item = dict(id=request["id"], method=request["method"], url=request["url"])
    headers = dict(request.get("headers") or {})
    if request.get("body") is not None:
        item["body"] = request["body"]
        headers.update(JSON_HEADERS)
    if headers:
        item["headers"] = headers
    return item
