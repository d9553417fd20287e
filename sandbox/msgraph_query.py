"""Query options on Graph device requests: `$select`, `$filter`, `$orderby`, `$search`, `$expand`,
`$top`, `$skiptoken`, `$count` (https://learn.microsoft.com/en-us/graph/query-parameters) and the
advanced-query rules (https://learn.microsoft.com/en-us/graph/aad-advanced-queries).
"""

import base64
import binascii
import copy
import json
import re
from dataclasses import dataclass, field

from sandbox import odata
from sandbox.msgraph_data import EXTENSION_KEYS, ROME_ONLY, SELECT_ONLY, V1_PROPERTIES

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 999
VIEWS = ("v1.0", "beta", "user")  # "user": the beta /users/{user}/devices and /me/devices collections
EXPANDABLE = ("registeredOwners", "registeredUsers")

STRING, BOOLEAN, DATETIME = "Edm.String", "Edm.Boolean", "Edm.DateTimeOffset"
# $filter support per property, from the property table of
# https://learn.microsoft.com/en-us/graph/api/resources/device?view=graph-rest-1.0. "eq null" is its own operator.
FILTERABLE = {
    "id": (STRING, {"eq", "ne", "not", "in"}),
    "accountEnabled": (BOOLEAN, {"eq", "ne", "not", "in"}),
    "approximateLastSignInDateTime": (DATETIME, {"eq", "ne", "not", "ge", "le", "eq null"}),
    "deviceId": (STRING, {"eq", "ne", "not", "startsWith"}),
    "displayName": (STRING, {"eq", "ne", "not", "ge", "le", "in", "startsWith", "eq null"}),
    "isCompliant": (BOOLEAN, {"eq", "ne", "not"}),
    "isManaged": (BOOLEAN, {"eq", "ne", "not"}),
    "mdmAppId": (STRING, {"eq", "ne", "not", "startsWith"}),
    "onPremisesSyncEnabled": (BOOLEAN, {"eq", "ne", "not", "in", "eq null"}),
    "operatingSystem": (STRING, {"eq", "ne", "not", "ge", "le", "startsWith", "eq null"}),
    "operatingSystemVersion": (STRING, {"eq", "ne", "not", "ge", "le", "startsWith", "eq null"}),
    "trustType": (STRING, {"eq", "ne", "not", "in"}),
    **{f"extensionAttributes/{key}": (STRING, {"eq", "not", "startsWith", "eq null"}) for key in EXTENSION_KEYS},
}
ORDERABLE = ("displayName", "approximateLastSignInDateTime")
OPERATOR_KINDS = {"eq": "Equal", "ne": "NotEqual", "gt": "GreaterThan", "ge": "GreaterThanOrEqual",
                  "lt": "LessThan", "le": "LessThanOrEqual"}
SEARCH_CLAUSE = re.compile(r'"(?P<property>[A-Za-z]+):(?P<term>[^"]*)"')


class ApiError(Exception):
    """A Graph error answer: HTTP status, error code, message and extra headers."""

    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def bad_request(message, code="Request_BadRequest"):
    return ApiError(400, code, message)


def unsupported_filter(prop):
    return ApiError(400, "Request_UnsupportedQuery",
                    f"Unsupported or invalid query filter clause specified for property '{prop}' of resource 'Device'.")


def selectable_properties(view):
    return V1_PROPERTIES + (ROME_ONLY if view != "v1.0" else ())


def default_properties(view, extension_attributes_by_default=True):
    """The properties a request without $select gets (see sandbox/README.md)."""
    hidden = SELECT_ONLY + (() if extension_attributes_by_default else ("extensionAttributes",))
    names = tuple(name for name in V1_PROPERTIES if name not in hidden)
    return names + (ROME_ONLY if view == "user" else ())


@dataclass
class DeviceQuery:
    """The query options of one device request, parsed and checked up front."""

    view: str
    selected: tuple = None  # None: the default property set
    expand: tuple = ()
    filter: object = None
    search: list = None
    order_by: str = None
    descending: bool = False
    top: int = DEFAULT_PAGE_SIZE
    after: list = None  # sort key of the last item of the previous page
    count: bool = False  # $count=true with ConsistencyLevel: eventual
    extension_attributes_by_default: bool = True
    defaults: tuple = field(default=None, repr=False)

    @classmethod
    def for_collection(cls, request, view, counting=False, **settings):
        """`counting`: the request is GET …/$count, which counts as $count=true."""
        options = _options(request, ("select", "expand", "filter", "search", "orderby", "top", "skiptoken", "count"))
        eventual = (request.header("ConsistencyLevel") or "").strip().lower() == "eventual"
        count = options.get("count", "false").lower()
        if count not in ("true", "false"):
            raise bad_request(f"Invalid value '{options['count']}' for $count: use true or false.")
        advanced = eventual and (count == "true" or counting)
        query = cls(view, count=advanced, **settings)
        query._parse_projection(options)
        if "filter" in options:
            query.filter = _check_filter(_parse(odata.parse_filter, options["filter"]), advanced)
        if "search" in options:
            if not eventual:
                raise ApiError(400, "Request_UnsupportedQuery",
                               "Request with $search query parameter only works through MSGraph with a special "
                               "request header: 'ConsistencyLevel: eventual'")
            query.search = _parse_search(options["search"])
        if "orderby" in options:
            query.order_by, query.descending = _check_order_by(options["orderby"], query.filter is not None, advanced)
        if "top" in options:
            query.top = _page_size(options["top"])
        if "skiptoken" in options:
            query.after = _decode_skiptoken(options["skiptoken"])
        return query

    @classmethod
    def for_entity(cls, request, view, **settings):
        query = cls(view, **settings)
        query._parse_projection(_options(request, ("select", "expand")))
        return query

    def _parse_projection(self, options):
        self.defaults = default_properties(self.view, self.extension_attributes_by_default)
        if "select" in options:
            self.selected = _check_select(_parse(odata.parse_select, options["select"]), self.view)
        if "expand" in options:
            self.expand = _check_expand(options["expand"])

    def context_suffix(self):
        """`(id,displayName)` after the entity set in @odata.context when $select is used."""
        return f"({','.join(self.selected)})" if self.selected else ""

    def render(self, device, registered_users=None):
        """The device as this request sees it; `registered_users(device_id)` serves $expand."""
        rendered = {}
        for name in self.selected or self.defaults:
            value = device.get(name)
            if name == "extensionAttributes":  # always all 15 keys, unset ones as null
                value = {key: (value or {}).get(key) for key in EXTENSION_KEYS}
            rendered[name] = copy.deepcopy(value)
        for name in self.expand:
            rendered[name] = registered_users(device["id"]) if registered_users else []
        return rendered

    def page(self, devices):
        """(items of this page, skiptoken of the next page or None, number of matching devices)."""
        matching = [device for device in devices if self._matches(device)]
        ordered = sorted(matching, key=self._sort_key, reverse=self.descending)
        if self.after is not None:
            ordered = [device for device in ordered
                       if (self._sort_key(device) < self.after if self.descending else self._sort_key(device) > self.after)]
        items = ordered[: self.top]
        next_token = _encode_skiptoken(self._sort_key(items[-1])) if len(ordered) > len(items) else None
        return items, next_token, len(matching)

    def _matches(self, device):
        if self.filter is not None and not odata.evaluate(self.filter, lambda prop: _value(device, prop)):
            return False
        return self.search is None or _search_matches(self.search, device)

    def _sort_key(self, device):
        """A JSON-friendly key (it travels inside $skiptoken): [[is set, value], object id]."""
        value = device.get(self.order_by) if self.order_by else None
        ordering = [1, value.casefold()] if isinstance(value, str) else [0, ""]
        return [ordering, device["id"]]


def _options(request, allowed):
    try:
        return odata.system_query_options(request.query, allowed)
    except odata.ODataError as exc:
        raise bad_request(str(exc)) from exc


def _parse(parser, text):
    try:
        return parser(text)
    except odata.ODataError as exc:
        raise bad_request(f"Invalid filter clause: {exc}" if parser is odata.parse_filter else str(exc)) from exc


def _canonical(name, names):
    """Graph matches property names without regard to case."""
    for candidate in names:
        if candidate.lower() == name.lower():
            return candidate
    return None


def _check_select(names, view):
    if names == ["*"]:
        return selectable_properties(view)
    selected = []
    for name in names:
        if "/" in name:
            raise bad_request(f"Term '{name}' is not valid in a $select or $expand expression.")
        canonical = _canonical(name, selectable_properties(view))
        if canonical is None:
            raise bad_request(f"Could not find a property named '{name}' on type 'microsoft.graph.device'.")
        if canonical not in selected:
            selected.append(canonical)
    return tuple(selected)


def _check_expand(text):
    expanded = []
    for name in (part.strip() for part in text.split(",")):
        canonical = _canonical(name, EXPANDABLE)
        if canonical is None:
            raise bad_request(f"Could not find a property named '{name}' on type 'microsoft.graph.device'.")
        expanded.append(canonical)
    return tuple(expanded)


def _check_filter(tree, advanced):
    """Type-check a parsed $filter against the device's filterable properties and operators.

    Returns the tree with property names in their canonical spelling."""
    advanced_property = None
    for node in odata.walk(tree):
        advanced_property = advanced_property or _check_filter_node(node)
    if advanced_property and not advanced:
        raise unsupported_filter(advanced_property.split("/")[0])
    return _canonicalize(tree)


def _check_filter_node(node):
    """Check one node of a $filter; returns the property that makes it an advanced query, or None."""
    advanced_property = None
    if isinstance(node, odata.Not):
        advanced_property = _check_negated(node)
    if isinstance(node, odata.Compare):
        advanced_property = advanced_property or _check_comparison(node)
    elif isinstance(node, odata.In):
        _require_operator(node.property, "in")
        for literal in node.literals:
            _require_type(node.property, literal, "eq")
    elif isinstance(node, odata.Call):
        _require_operator(node.property, node.function)
        _require_type(node.property, node.literal, "eq")
    if hasattr(node, "property") and node.property.lower().startswith("extensionattributes/"):
        advanced_property = advanced_property or _canonical_filter_property(node.property)
    return advanced_property


def _check_negated(node):
    """`not(…)`: every property under it must allow `not`, which makes the query advanced."""
    advanced_property = None
    for inner in odata.walk(node.operand):
        if hasattr(inner, "property"):
            _require_operator(inner.property, "not")
            advanced_property = advanced_property or _canonical_filter_property(inner.property)
    return advanced_property


def _check_comparison(node):
    """`prop op literal`; `ne` and comparisons with null are advanced queries."""
    prop = _canonical_filter_property(node.property)
    if node.literal.type == "null":
        if node.operator not in ("eq", "ne"):
            raise unsupported_filter(prop)
        _require_operator(prop, "eq null")
    else:
        _require_type(prop, node.literal, node.operator)
    _require_operator(prop, node.operator)
    return prop if node.operator == "ne" or node.literal.type == "null" else None


def _canonical_filter_property(name):
    canonical = _canonical(name, FILTERABLE)
    if canonical is None:
        if _canonical(name, V1_PROPERTIES + ROME_ONLY):
            raise unsupported_filter(name)
        raise bad_request(f"Invalid filter clause: Could not find a property named '{name}' on type "
                          "'microsoft.graph.device'.")
    return canonical


def _require_operator(prop, operator):
    canonical = _canonical_filter_property(prop)
    if operator not in FILTERABLE[canonical][1]:
        raise unsupported_filter(canonical.split("/")[0])


def _require_type(prop, literal, operator):
    expected = FILTERABLE[_canonical_filter_property(prop)][0]
    if literal.type != expected:
        raise bad_request(
            "Invalid filter clause: A binary operator with incompatible types was detected. Found operand types "
            f"'{expected}' and '{literal.type}' for operator kind '{OPERATOR_KINDS.get(operator, operator)}'."
        )


def _canonicalize(node):
    if isinstance(node, odata.Logical):
        return odata.Logical(node.operator, tuple(_canonicalize(operand) for operand in node.operands))
    if isinstance(node, odata.Not):
        return odata.Not(_canonicalize(node.operand))
    prop = _canonical_filter_property(node.property)
    if isinstance(node, odata.In):
        return odata.In(prop, node.literals)
    if isinstance(node, odata.Call):
        return odata.Call(node.function, prop, node.literal)
    return odata.Compare(node.operator, prop, node.literal)


def _check_order_by(text, filtered, advanced):
    clauses = _parse(odata.parse_orderby, text)
    if len(clauses) > 1:
        raise ApiError(400, "Request_UnsupportedQuery", "Sorting by more than one property is not supported.")
    name, descending = clauses[0]
    canonical = _canonical(name, ORDERABLE)
    if canonical is None:
        raise ApiError(400, "Request_UnsupportedQuery", f"Sorting by '{name}' is not supported.")
    if filtered and not advanced:  # $filter together with $orderby is an advanced query
        raise ApiError(400, "Request_UnsupportedQuery", "Sorting not supported for current query.")
    return canonical, descending


def _parse_search(text):
    """'"displayName:lap" OR "displayName:mac"' -> [("or"|"and"|None, property, term), ...]."""
    clauses, position, joiner = [], 0, None
    text = text.strip()
    while True:
        found = SEARCH_CLAUSE.match(text, position)
        if not found:
            raise bad_request(f"Syntax error: invalid $search expression '{text}'.")
        prop = _canonical(found.group("property"), ("displayName",))
        if prop is None:
            raise ApiError(400, "Request_UnsupportedQuery",
                           f"$search is not supported on property '{found.group('property')}' of resource 'Device'.")
        clauses.append((joiner, prop, found.group("term").casefold()))
        rest = re.match(r"\s+(AND|OR)\s+", text[found.end():])
        if found.end() == len(text):
            return clauses
        if not rest:
            raise bad_request(f"Syntax error: invalid $search expression '{text}'.")
        joiner, position = rest.group(1).lower(), found.end() + rest.end()


def _search_matches(clauses, device):
    """Tokenized prefix match, as directory $search does on displayName."""
    result = None
    for joiner, prop, term in clauses:
        words = re.split(r"[^0-9a-z]+", (device.get(prop) or "").casefold())
        hit = any(word.startswith(term) for word in words if word) or (device.get(prop) or "").casefold().startswith(term)
        result = hit if joiner is None else (result and hit if joiner == "and" else result or hit)
    return result


def _page_size(text):
    if not re.fullmatch(r"[0-9]+", text or "") or not 1 <= int(text) <= MAX_PAGE_SIZE:
        raise bad_request(f"Invalid page size specified: '{text}'. Must be between 1 and {MAX_PAGE_SIZE} inclusive.")
    return int(text)


def _encode_skiptoken(sort_key):
    return "RFNwdAIA" + base64.urlsafe_b64encode(json.dumps(sort_key).encode()).decode().rstrip("=")


def _decode_skiptoken(token):
    try:
        if not token.startswith("RFNwdAIA"):
            raise ValueError("not a sandbox page token")
        payload = token[len("RFNwdAIA"):]
        key = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        if not (isinstance(key, list) and len(key) == 2 and isinstance(key[0], list) and isinstance(key[1], str)):
            raise ValueError("unexpected page token content")
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise ApiError(400, "Directory_ExpiredPageToken",
                       "The specified page token value has expired and can no longer be included in your request.") from exc
    return key


def _value(device, prop):
    if prop.startswith("extensionAttributes/"):
        return (device.get("extensionAttributes") or {}).get(prop.split("/", 1)[1])
    return device.get(prop)
