"""JSON batching, `POST /{version}/$batch` (https://learn.microsoft.com/en-us/graph/json-batching):
up to 20 requests, run in `dependsOn` order through the emulator's normal pipeline (faults,
routes, throttling, wire log) as the batch's caller, answered in reverse order.
"""

import base64
import binascii
import json
import re

from sandbox.msgraph_gateway import graph_error, json_body
from sandbox.msgraph_query import bad_request
from sandbox.emulator import ABORTING_FAULTS
from sandbox.server import Request, Response, parse_query, split_target

MAX_BATCH_REQUESTS = 20


def batch_items(payload):
    """The batch's requests, checked; raises 400 for a malformed batch."""
    requests = payload.get("requests")
    if not isinstance(requests, list) or not requests:
        raise bad_request("Invalid batch payload format: 'requests' must be a non-empty array.", code="BadRequest")
    if len(requests) > MAX_BATCH_REQUESTS:
        raise bad_request(f"The batch contains {len(requests)} requests; at most {MAX_BATCH_REQUESTS} are allowed.",
                          code="BadRequest")
    seen = set()
    for index, item in enumerate(requests):
        check_batch_item(index, item)
        if item["id"].lower() in seen:  # ids are case-insensitive
            raise bad_request(f"Request Id {item['id']} has to be unique in a batch.", code="BadRequest")
        seen.add(item["id"].lower())
    for item in requests:
        for name in item.get("dependsOn", []):
            if name.lower() not in seen:
                raise bad_request(f"Request {item['id']} depends on request {name}, which is not in the batch.",
                                  code="BadRequest")
    return requests


def check_batch_item(index, item):
    """One request of a batch: an object with an id, method and url, dependsOn ids and a headers object."""
    if not isinstance(item, dict):
        raise bad_request(f"Invalid batch payload format: request {index} is not an object.", code="BadRequest")
    for name in ("id", "method", "url"):
        if not isinstance(item.get(name), str) or not item[name]:
            raise bad_request(f"Invalid batch payload format: request {index} has no '{name}'.", code="BadRequest")
    depends_on = item.get("dependsOn", [])
    if not isinstance(depends_on, list) or not all(isinstance(name, str) for name in depends_on):
        raise bad_request(f"Invalid batch payload format: dependsOn of request {item['id']} must be an array "
                          "of request ids.", code="BadRequest")
    if not isinstance(item.get("headers", {}), dict):
        raise bad_request(f"Invalid batch payload format: headers of request {item['id']} must be an object.",
                          code="BadRequest")


def dependency_order(items):
    """Requests in an order where each comes after the ones it depends on (else request order)."""
    done, ordered, pending = set(), [], list(items)
    while pending:
        ready = next((item for item in pending
                      if all(name.lower() in done for name in item.get("dependsOn", []))), None)
        if ready is None:
            raise bad_request("The dependsOn references of the batch requests form a cycle.", code="BadRequest")
        pending.remove(ready)
        done.add(ready["id"].lower())
        ordered.append(ready)
    return ordered


def batch_item_body(item):
    body = item.get("body")
    if body is None:
        return b""
    if isinstance(body, str):  # a non-JSON body travels base64-encoded
        try:
            return base64.b64decode(body, validate=True)
        except binascii.Error:
            return body.encode("utf-8")
    return json.dumps(body).encode("utf-8")


def batch_answer(item_id, response):
    payload, content_type = response.encode()
    answer = {"id": item_id, "status": response.status, "headers": dict(response.headers)}
    if response.body is not None:
        answer["headers"]["Content-Type"] = content_type
        if isinstance(response.body, (dict, list)):
            answer["body"] = response.body
        else:
            answer["body"] = base64.b64encode(payload).decode("ascii")
    return answer


class BatchEndpoint:
    """Mixin of GraphSandbox: the $batch handler, and the fault-rule key `batch_item`.

    Uses from the composed class: GraphGateway's `_request_ids`, and the Emulator's `run` and
    `finish_response`.
    """

    def _batch(self, request, caller):
        if request.context.get("batch_item") is not None:
            raise bad_request("Nested batch requests are not supported.", code="BadRequest")
        items = batch_items(json_body(request))
        statuses, answers = {}, []
        for item in dependency_order(items):
            answer = self._run_batch_item(request, item, statuses)
            if request.abort:  # a reset fault hit this item: the connection drops, nothing is answered
                return Response(200, {"responses": []})
            statuses[item["id"].lower()] = answer["status"]
            answers.append(answer)
        # Clients must match answers by id: never hand them back in request order.
        return Response(200, {"responses": answers[::-1]})

    def _run_batch_item(self, outer, item, statuses):
        """Dispatch one sub-request through the normal pipeline (faults, routes, throttling, wire log)."""
        item_request = self._batch_item_request(outer, item)
        failed = [name for name in item.get("dependsOn", []) if not 200 <= statuses[name.lower()] < 300]
        if failed:
            response = graph_error(424, "FailedDependency", f"The request it depends on ({failed[0]}) failed.")
        elif "body" in item and not item_request.header("Content-Type"):
            response = graph_error(400, "BadRequest",
                                   f"Write request id : {item['id']} does not contain Content-Type header or body.")
        elif re.match(r"[A-Za-z][A-Za-z0-9+.-]*:|//", item["url"]):
            response = graph_error(400, "BadRequest", "Batch request URLs must be relative, e.g. /devices/{id}.")
        else:
            response, fault = self.run(item_request)
            if fault in ABORTING_FAULTS:
                outer.abort = True
                return None
            return batch_answer(item["id"], response)
        self.finish_response(item_request, response)
        return batch_answer(item["id"], response)

    def _batch_item_request(self, outer, item):
        request_id, client_request_id = self._request_ids(outer)
        target = f"/{outer.params['version']}/{item['url'].lstrip('/')}"
        path, query_string = split_target(target)
        # The sub-request runs as the batch's caller, whatever Authorization it carries itself.
        headers = {str(name): str(value) for name, value in item.get("headers", {}).items()
                   if str(name).lower() != "authorization"}
        if outer.header("Authorization"):
            headers["Authorization"] = outer.header("Authorization")
        return Request(
            method=item["method"].upper(),
            target=target,
            path=path,
            query=parse_query(query_string),
            headers=headers,
            body=batch_item_body(item),
            connection_id=outer.connection_id,
            context={"batch_item": item["id"], "request_id": request_id, "client_request_id": client_request_id},
        )

    # Emulator hooks

    def fault_applies(self, rule, request):
        """`match.batch_item`: true = only batch sub-requests, false = only top-level requests,
        a string = only the sub-request with that id."""
        wanted = rule["match"].get("batch_item")
        item = request.context.get("batch_item")
        if wanted is None:
            return True
        if isinstance(wanted, bool):
            return (item is not None) == wanted
        return item is not None and item.lower() == str(wanted).lower()

    def wire_fields(self, request):
        return {"batch_item": request.context.get("batch_item")}
