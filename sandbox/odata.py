"""The slice of OData v4 URL conventions the Graph emulator needs: system query options,
`$filter` expressions (parsed into a small tree, then checked and evaluated by the caller),
`$orderby` and `$select` lists, and quoted string literals with their `''` escape.
"""

import datetime
import re
from dataclasses import dataclass
from operator import eq, ge, gt, le, lt, ne

SYSTEM_OPTIONS = ("select", "filter", "top", "count", "orderby", "skiptoken", "search", "expand", "skip", "format")
COMPARISONS = ("eq", "ne", "gt", "ge", "lt", "le")
FUNCTIONS = {"startswith": "startsWith", "endswith": "endsWith", "contains": "contains"}
ORDERING = {"eq": eq, "ne": ne, "gt": gt, "ge": ge, "lt": lt, "le": le}
KEYWORDS = ("and", "or", "not", "in", "true", "false", "null") + COMPARISONS

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\dT]))
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<punct>[(),])
    """,
    re.VERBOSE,
)


class ODataError(ValueError):
    """A query option the service cannot parse; the message says what is wrong."""


@dataclass(frozen=True)
class Literal:
    value: object
    type: str  # Edm type name, or "null"


@dataclass(frozen=True)
class Compare:
    operator: str  # one of COMPARISONS
    property: str
    literal: Literal


@dataclass(frozen=True)
class In:
    property: str
    literals: tuple


@dataclass(frozen=True)
class Call:
    function: str  # canonical spelling, e.g. "startsWith"
    property: str
    literal: Literal


@dataclass(frozen=True)
class Not:
    operand: object


@dataclass(frozen=True)
class Logical:
    operator: str  # "and" | "or"
    operands: tuple


def unquote_string(text):
    """The value of a complete quoted literal ('O''Brien' -> O'Brien), or None if `text` is not one."""
    if re.fullmatch(r"'(?:[^']|'')*'", text):
        return text[1:-1].replace("''", "'")
    return None


def system_query_options(query, allowed):
    """Map a parsed query string to {option name without '$': value}.

    The `$` prefix is optional and names are case-insensitive, as on Graph. A repeated
    option, or a known one that is not in `allowed`, is an error; other parameters are ignored.
    """
    options = {}
    for raw_name, value in query.items():
        name = raw_name.lower().lstrip("$")
        if name not in SYSTEM_OPTIONS:
            if raw_name.startswith("$"):
                raise ODataError(f"Query option '{raw_name}' is not supported.")
            continue
        if isinstance(value, list) or name in options:
            raise ODataError(f"Query option '${name}' was specified more than once, but it must be specified at most once.")
        if name not in allowed:
            raise ODataError(f"Query option '${name}' is not allowed for this request.")
        options[name] = value
    return options


def parse_select(text):
    names = [name.strip() for name in text.split(",")]
    if not text.strip() or any(not name for name in names):
        raise ODataError(f"Syntax error in $select: '{text}'.")
    return names


def parse_orderby(text):
    """'displayName desc' -> [("displayName", True)]."""
    clauses = []
    for clause in text.split(","):
        words = clause.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise ODataError(f"Syntax error in $orderby: '{text}'.")
        clauses.append((words[0], len(words) == 2 and words[1].lower() == "desc"))
    return clauses


def parse_filter(text):
    """Parse a `$filter` expression into Compare / In / Call / Not / Logical nodes."""
    return _FilterParser(text).parse()


class _FilterParser:
    def __init__(self, text):
        self.text = text
        self.tokens = self._tokenize(text)
        self.position = 0

    def _tokenize(self, text):
        tokens = []
        index = 0
        while index < len(text):
            found = _TOKEN.match(text, index)
            if not found:
                if text[index] == "'":
                    self._fail(f"unterminated string literal at position {index}")
                self._fail(f"character '{text[index]}' is not valid at position {index}")
            if found.lastgroup != "space":
                tokens.append((found.lastgroup, found.group(), index))
            index = found.end()
        return tokens

    def _fail(self, problem):
        raise ODataError(f"Syntax error: {problem} in '{self.text}'.")

    def _peek(self, offset=0):
        index = self.position + offset
        return self.tokens[index] if index < len(self.tokens) else (None, None, len(self.text))

    def _next(self):
        token = self._peek()
        if token[0] is None:
            self._fail("unexpected end of expression")
        self.position += 1
        return token

    def _expect(self, text):
        kind, value, where = self._next()
        if value != text:
            self._fail(f"expected '{text}' but found '{value}' at position {where}")

    def _keyword(self, word):
        kind, value = self._peek()[:2]
        return kind == "name" and value == word

    def parse(self):
        if not self.tokens:
            self._fail("the expression is empty")
        tree = self._or()
        kind, value, where = self._peek()
        if kind is not None:
            self._fail(f"unexpected '{value}' at position {where}")
        return tree

    def _or(self):
        operands = [self._and()]
        while self._keyword("or"):
            self._next()
            operands.append(self._and())
        return operands[0] if len(operands) == 1 else Logical("or", tuple(operands))

    def _and(self):
        operands = [self._unary()]
        while self._keyword("and"):
            self._next()
            operands.append(self._unary())
        return operands[0] if len(operands) == 1 else Logical("and", tuple(operands))

    def _unary(self):
        if self._keyword("not"):
            self._next()
            return Not(self._unary())
        return self._primary()

    def _primary(self):
        kind, value, where = self._peek()
        if value == "(":
            self._next()
            inner = self._or()
            self._expect(")")
            return inner
        if kind is None:
            self._fail("unexpected end of expression")
        if kind != "name" or value in KEYWORDS:
            self._fail(f"expected a property or function but found '{value}' at position {where}")
        if self._peek(1)[1] == "(":
            return self._call()
        return self._comparison()

    def _call(self):
        name, where = self._next()[1:]
        function = FUNCTIONS.get(name.lower())
        if function is None:
            self._fail(f"unknown function '{name}' at position {where}")
        self._expect("(")
        prop = self._property()
        self._expect(",")
        literal = self._literal()
        self._expect(")")
        return Call(function, prop, literal)

    def _comparison(self):
        prop = self._property()
        kind, operator, where = self._next()
        if operator == "in":
            self._expect("(")
            literals = [self._literal()]
            while self._peek()[1] == ",":
                self._next()
                literals.append(self._literal())
            self._expect(")")
            return In(prop, tuple(literals))
        if operator not in COMPARISONS:
            self._fail(f"expected a comparison operator after '{prop}' but found '{operator}' at position {where}")
        return Compare(operator, prop, self._literal())

    def _property(self):
        kind, value, where = self._next()
        if kind != "name" or value in KEYWORDS:
            self._fail(f"expected a property but found '{value}' at position {where}")
        return value

    def _literal(self):
        kind, value, where = self._next()
        if kind == "string":
            return Literal(unquote_string(value), "Edm.String")
        if kind == "number":
            return Literal(float(value), "Edm.Double") if "." in value else Literal(int(value), "Edm.Int32")
        try:
            if kind == "datetime":
                return Literal(datetime.datetime.fromisoformat(value.replace("Z", "+00:00")), "Edm.DateTimeOffset")
            if kind == "date":  # an Edm.Date: comparing it with a DateTimeOffset property is a type error, as on Graph
                return Literal(datetime.date.fromisoformat(value), "Edm.Date")
        except ValueError:
            self._fail(f"'{value}' is not a valid date or time at position {where}")
        if value in ("true", "false"):
            return Literal(value == "true", "Edm.Boolean")
        if value == "null":
            return Literal(None, "null")
        self._fail(f"expected a literal but found '{value}' at position {where}")


def walk(node):
    """Every node of a filter tree, parents before children."""
    yield node
    if isinstance(node, Not):
        yield from walk(node.operand)
    elif isinstance(node, Logical):
        for operand in node.operands:
            yield from walk(operand)


def evaluate(node, value_of):
    """Whether an object matches; `value_of(property)` returns its value. String comparisons
    ignore case, as directory queries do."""
    if isinstance(node, Logical):
        results = (evaluate(operand, value_of) for operand in node.operands)
        return all(results) if node.operator == "and" else any(results)
    if isinstance(node, Not):
        return not evaluate(node.operand, value_of)
    if isinstance(node, In):
        return any(_compare("eq", value_of(node.property), literal.value) for literal in node.literals)
    if isinstance(node, Call):
        value = value_of(node.property)
        if not isinstance(value, str) or not isinstance(node.literal.value, str):
            return False
        value, wanted = value.casefold(), node.literal.value.casefold()
        if node.function == "startsWith":
            return value.startswith(wanted)
        if node.function == "endsWith":
            return value.endswith(wanted)
        return wanted in value
    return _compare(node.operator, value_of(node.property), node.literal.value)


def _compare(operator, value, wanted):
    if wanted is None or value is None:  # only eq / ne are defined against null
        same = value is None and wanted is None
        return same if operator == "eq" else (not same if operator == "ne" else False)
    try:
        return ORDERING[operator](_comparable(value), _comparable(wanted))
    except TypeError:  # values of different kinds never match
        return False


def _comparable(value):
    if isinstance(value, str):
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}T[\d:.]+Z", value):
            return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return value.casefold()
    return value
