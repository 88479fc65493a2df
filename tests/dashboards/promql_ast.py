"""A small PromQL parser: enough of Prometheus' grammar to lint dashboard queries.

It builds the node types the lint rules walk (selectors, range selectors, calls, aggregations,
binary operations) and rejects what Prometheus' parser rejects for the constructs it knows:
unknown functions, wrong argument counts, range vectors where instant vectors belong and back,
selectors without a non-empty matcher. Prometheus itself stays the authority (the lint test also
runs `promtool check rules`, the live test the HTTP API); this parser exists to see the structure.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

DURATION_RE = re.compile(r"(?:\d+(?:ms|[smhdwy]))+")


class PromQLError(ValueError):
    """A query that does not parse; the message names the position."""


# --- AST ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str  # "=", "!=", "=~", "!~"
    value: str


@dataclass
class Node:
    def children(self) -> list[Node]:
        return []


@dataclass
class NumberLiteral(Node):
    value: float


@dataclass
class StringLiteral(Node):
    value: str


@dataclass
class VectorSelector(Node):
    name: str
    matchers: list[Matcher]

    def all_matchers(self) -> list[Matcher]:
        named = [Matcher("__name__", "=", self.name)] if self.name else []
        return named + self.matchers


@dataclass
class MatrixSelector(Node):
    vector: VectorSelector
    range: str

    def children(self) -> list[Node]:
        return [self.vector]


@dataclass
class Subquery(Node):
    expr: Node
    range: str
    step: str

    def children(self) -> list[Node]:
        return [self.expr]


@dataclass
class Call(Node):
    func: str
    args: list[Node]

    def children(self) -> list[Node]:
        return list(self.args)


@dataclass
class Aggregate(Node):
    op: str
    expr: Node
    param: Node | None
    grouping: list[str]
    without: bool

    def children(self) -> list[Node]:
        return [self.param, self.expr] if self.param is not None else [self.expr]


@dataclass
class Binary(Node):
    op: str
    lhs: Node
    rhs: Node
    return_bool: bool = False
    matching: list[str] = field(default_factory=list)

    def children(self) -> list[Node]:
        return [self.lhs, self.rhs]


@dataclass
class Unary(Node):
    op: str
    expr: Node

    def children(self) -> list[Node]:
        return [self.expr]


@dataclass
class Paren(Node):
    expr: Node

    def children(self) -> list[Node]:
        return [self.expr]


def walk(node: Node, parents: tuple[Node, ...] = ()) -> Iterator[tuple[Node, tuple[Node, ...]]]:
    """Every node with the chain of its ancestors (outermost first)."""
    yield node, parents
    for child in node.children():
        yield from walk(child, (*parents, node))


def selectors(node: Node) -> list[VectorSelector]:
    return [n for n, _ in walk(node) if isinstance(n, VectorSelector)]


# --- value types and functions ----------------------------------------------------------------

SCALAR, VECTOR, MATRIX, STRING = "scalar", "instant vector", "range vector", "string"

# name -> (argument types, number of trailing optional arguments, return type); "*" = variadic tail
FUNCTIONS: dict[str, tuple[tuple[str, ...], int, str]] = {
    **{f: ((MATRIX,), 0, VECTOR) for f in (
        "rate", "irate", "increase", "delta", "idelta", "deriv", "changes", "resets",
        "avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time",
        "stddev_over_time", "stdvar_over_time", "last_over_time", "present_over_time",
        "absent_over_time", "mad_over_time",
    )},
    "quantile_over_time": ((SCALAR, MATRIX), 0, VECTOR),
    "predict_linear": ((MATRIX, SCALAR), 0, VECTOR),
    "holt_winters": ((MATRIX, SCALAR, SCALAR), 0, VECTOR),
    **{f: ((VECTOR,), 0, VECTOR) for f in (
        "abs", "ceil", "floor", "exp", "sqrt", "ln", "log2", "log10", "absent", "sgn",
        "timestamp", "sort", "sort_desc", "deg", "rad", "acos", "asin", "atan", "acosh", "asinh",
        "atanh", "cos", "cosh", "sin", "sinh", "tan", "tanh",
    )},
    **{f: ((VECTOR,), 1, VECTOR) for f in (
        "day_of_month", "day_of_week", "day_of_year", "days_in_month", "hour", "minute", "month", "year",
    )},
    "round": ((VECTOR, SCALAR), 1, VECTOR),
    "clamp": ((VECTOR, SCALAR, SCALAR), 0, VECTOR),
    "clamp_min": ((VECTOR, SCALAR), 0, VECTOR),
    "clamp_max": ((VECTOR, SCALAR), 0, VECTOR),
    "histogram_quantile": ((SCALAR, VECTOR), 0, VECTOR),
    "label_replace": ((VECTOR, STRING, STRING, STRING, STRING), 0, VECTOR),
    "label_join": ((VECTOR, STRING, STRING, "*" + STRING), 0, VECTOR),
    "scalar": ((VECTOR,), 0, SCALAR),
    "vector": ((SCALAR,), 0, VECTOR),
    "time": ((), 0, SCALAR),
    "pi": ((), 0, SCALAR),
}

AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk",
    "topk", "quantile",
}
PARAM_AGGREGATIONS = {"count_values": STRING, "bottomk": SCALAR, "topk": SCALAR, "quantile": SCALAR}

# Binary operators by precedence, lowest first; "^" is right-associative.
PRECEDENCE: list[set[str]] = [
    {"or"}, {"and", "unless"}, {"==", "!=", "<=", "<", ">=", ">"}, {"+", "-"}, {"*", "/", "%", "atan2"}, {"^"},
]
COMPARISONS = PRECEDENCE[2]
SET_OPERATORS = {"and", "or", "unless"}


def value_type(node: Node) -> str:
    match node:
        case NumberLiteral():
            return SCALAR
        case StringLiteral():
            return STRING
        case VectorSelector() | Aggregate():
            return VECTOR
        case MatrixSelector() | Subquery():
            return MATRIX
        case Call():
            return FUNCTIONS[node.func][2]
        case Binary():
            return SCALAR if value_type(node.lhs) == value_type(node.rhs) == SCALAR else VECTOR
        case Unary() | Paren():
            return value_type(node.expr)
    raise AssertionError(node)


# --- lexer -----------------------------------------------------------------------------------

TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+|\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`[^`]*`)
  | (?P<duration>(?:\d+(?:ms|[smhdwy]))+(?![\w.]))
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<ident>[a-zA-Z_][a-zA-Z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=(){}\[\],:@])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int


def tokenize(query: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(query):
        m = TOKEN_RE.match(query, pos)
        if not m:
            raise PromQLError(f"unexpected character {query[pos]!r} at position {pos}")
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, m.group(), pos))
        pos = m.end()
    tokens.append(Token("eof", "", pos))
    return tokens


def unquote(text: str) -> str:
    if text[0] == "`":
        return text[1:-1]
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "\\": "\\"}.get(m.group(1), m.group(1)), body)


# --- parser ----------------------------------------------------------------------------------


class Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.tokens = tokenize(query)
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def error(self, message: str, token: Token | None = None) -> PromQLError:
        token = token or self.tok
        found = repr(token.text) if token.text else "end of input"
        return PromQLError(f"{message} at position {token.pos} (found {found}) in {self.query!r}")

    def take(self, text: str | None = None, kind: str | None = None) -> Token:
        token = self.tok
        if (text is not None and token.text != text) or (kind is not None and token.kind != kind):
            raise self.error(f"expected {text or kind}")
        self.i += 1
        return token

    def accept(self, text: str) -> bool:
        if self.tok.text == text and self.tok.kind in ("op", "ident"):
            self.i += 1
            return True
        return False

    def parse(self) -> Node:
        node = self.expr(0)
        if self.tok.kind != "eof":
            raise self.error("unexpected token")
        return node

    # binary operators: precedence climbing
    def expr(self, level: int) -> Node:
        if level == len(PRECEDENCE):
            return self.unary()
        lhs = self.expr(level + 1)
        while self.tok.text in PRECEDENCE[level] and self.tok.kind in ("op", "ident"):
            op = self.take().text
            return_bool = self.accept("bool")
            if return_bool and op not in COMPARISONS:
                raise self.error("bool modifier on a non-comparison operator")
            matching = self.vector_matching()
            rhs = self.expr(level if op == "^" else level + 1)
            lhs = self.check_binary(Binary(op, lhs, rhs, return_bool, matching))
        return lhs

    def vector_matching(self) -> list[str]:
        labels: list[str] = []
        if self.tok.text in ("on", "ignoring"):
            self.take()
            labels = self.label_list()
            if self.tok.text in ("group_left", "group_right"):
                self.take()
                if self.tok.text == "(":
                    self.label_list()
        return labels

    def check_binary(self, node: Binary) -> Binary:
        lt, rt = value_type(node.lhs), value_type(node.rhs)
        if STRING in (lt, rt) or MATRIX in (lt, rt):
            raise PromQLError(f"binary operator {node.op!r} on a {lt} and a {rt} in {self.query!r}")
        if node.op in SET_OPERATORS and (lt == SCALAR or rt == SCALAR):
            raise PromQLError(f"set operator {node.op!r} needs instant vectors in {self.query!r}")
        if node.op in COMPARISONS and lt == rt == SCALAR and not node.return_bool:
            raise PromQLError(f"comparisons between scalars must use bool in {self.query!r}")
        return node

    def unary(self) -> Node:
        if self.tok.text in ("+", "-") and self.tok.kind == "op":
            op = self.take().text
            inner = self.unary()
            if value_type(inner) not in (SCALAR, VECTOR):
                raise self.error("unary operator on a non-numeric value")
            return Unary(op, inner)
        return self.postfix(self.primary())

    def postfix(self, node: Node) -> Node:
        while True:
            if self.tok.text == "[":
                node = self.range_or_subquery(node)
            elif self.tok.text == "offset" and self.tok.kind == "ident":
                self.take()
                self.accept("-")
                self.take(kind="duration")
                self.require_selector_like(node, "offset")
            elif self.tok.text == "@":
                self.take()
                if self.tok.text in ("start", "end"):
                    self.take()
                    self.take("(")
                    self.take(")")
                else:
                    self.accept("-")
                    self.take(kind="number")
                self.require_selector_like(node, "@")
            else:
                return node

    def require_selector_like(self, node: Node, modifier: str) -> None:
        if not isinstance(node, VectorSelector | MatrixSelector | Subquery):
            raise self.error(f"{modifier} modifier must follow a selector or subquery")

    def range_or_subquery(self, node: Node) -> Node:
        self.take("[")
        rng = self.take(kind="duration").text
        if self.accept(":"):
            step = self.take(kind="duration").text if self.tok.kind == "duration" else ""
            self.take("]")
            if value_type(node) != VECTOR:
                raise self.error("subquery is only allowed on an instant vector")
            return Subquery(node, rng, step)
        self.take("]")
        if not isinstance(node, VectorSelector):
            raise self.error("ranges only allowed for vector selectors")
        return MatrixSelector(node, rng)

    def primary(self) -> Node:
        tok = self.tok
        if tok.kind == "number":
            self.take()
            return NumberLiteral(float.fromhex(tok.text) if tok.text.lower().startswith("0x") else float(tok.text))
        if tok.kind == "duration":
            raise self.error("a duration is not a value")
        if tok.kind == "string":
            self.take()
            return StringLiteral(unquote(tok.text))
        if tok.text == "(":
            self.take()
            inner = self.expr(0)
            self.take(")")
            return Paren(inner)
        if tok.text == "{":
            return self.selector("")
        if tok.kind == "ident":
            lower = tok.text.lower()
            if lower in ("inf", "nan"):
                self.take()
                return NumberLiteral(float(lower))
            nxt = self.tokens[self.i + 1].text
            if tok.text in AGGREGATIONS and nxt in ("(", "by", "without"):
                return self.aggregate()
            if nxt == "(" and tok.text in FUNCTIONS:
                return self.call()
            if nxt == "(":
                raise self.error(f"unknown function {tok.text!r}")
            self.take()
            return self.selector(tok.text)
        raise self.error("unexpected token")

    def label_list(self) -> list[str]:
        self.take("(")
        labels: list[str] = []
        while self.tok.text != ")":
            labels.append(self.take(kind="ident").text)
            if not self.accept(","):
                break
        self.take(")")
        return labels

    def selector(self, name: str) -> VectorSelector:
        matchers: list[Matcher] = []
        if self.accept("{"):
            while self.tok.text != "}":
                label = self.take(kind="ident").text
                op = self.tok.text
                if op not in ("=", "!=", "=~", "!~"):
                    raise self.error("expected a label matching operator")
                self.take()
                value = unquote(self.take(kind="string").text)
                if op in ("=~", "!~"):
                    try:
                        re.compile(value)
                    except re.error as exc:
                        raise self.error(f"invalid regular expression {value!r}: {exc}") from None
                matchers.append(Matcher(label, op, value))
                if not self.accept(","):
                    break
            self.take("}")
        node = VectorSelector(name, matchers)
        if not any(_matches_nonempty_only(m) for m in node.all_matchers()):
            raise PromQLError(f"vector selector must contain at least one non-empty matcher in {self.query!r}")
        return node

    def call(self) -> Call:
        name = self.take().text
        self.take("(")
        args: list[Node] = []
        while self.tok.text != ")":
            args.append(self.expr(0))
            if not self.accept(","):
                break
        self.take(")")
        types, optional, _ = FUNCTIONS[name]
        variadic = bool(types) and types[-1].startswith("*")
        fixed = [t.lstrip("*") for t in types]
        low = len(fixed) - optional - (1 if variadic else 0)
        if len(args) < low or (not variadic and len(args) > len(fixed)):
            raise PromQLError(f"function {name!r} takes {len(fixed)} argument(s), got {len(args)} in {self.query!r}")
        for i, arg in enumerate(args):
            want = fixed[min(i, len(fixed) - 1)]
            got = value_type(arg)
            if got != want:
                raise PromQLError(f"function {name!r} argument {i + 1}: expected {want}, got {got} in {self.query!r}")
        return Call(name, args)

    def aggregate(self) -> Aggregate:
        op = self.take().text
        grouping: list[str] = []
        without = False
        if self.tok.text in ("by", "without"):
            without = self.take().text == "without"
            grouping = self.label_list()
        self.take("(")
        param: Node | None = None
        if op in PARAM_AGGREGATIONS:
            param = self.expr(0)
            self.take(",")
            if value_type(param) != PARAM_AGGREGATIONS[op]:
                raise self.error(f"{op} parameter must be a {PARAM_AGGREGATIONS[op]}")
        inner = self.expr(0)
        self.take(")")
        if self.tok.text in ("by", "without"):
            if grouping or without:
                raise self.error("grouping given twice")
            without = self.take().text == "without"
            grouping = self.label_list()
        if value_type(inner) != VECTOR:
            raise PromQLError(f"{op} expects an instant vector, got {value_type(inner)} in {self.query!r}")
        return Aggregate(op, inner, param, grouping, without)


def _matches_nonempty_only(m: Matcher) -> bool:
    """True when the matcher cannot match the empty string (what Prometheus requires of one matcher)."""
    if m.op == "=":
        return m.value != ""
    if m.op == "=~":
        return re.fullmatch(m.value, "") is None
    if m.op == "!=":
        return m.value == ""
    return re.fullmatch(m.value, "") is not None  # "!~" that excludes ""


def parse(query: str) -> Node:
    """Parse a PromQL expression; raises PromQLError with the position of the first problem."""
    return Parser(query).parse()


def duration_seconds(text: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    if not DURATION_RE.fullmatch(text):
        raise PromQLError(f"not a duration: {text!r}")
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)(ms|[smhdwy])", text))
