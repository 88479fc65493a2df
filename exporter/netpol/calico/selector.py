"""Calico's selector language: a tokenizer and recursive-descent parser with column-pointing errors.

Grammar (libcalico-go/lib/selector/tokenizer and parser; docs "Selector syntax"):

    expr      := and ( "||" and )*
    and       := op ( "&&" op )*
    op        := "!"* ( "(" expr ")" | "all()" | "global()" | "has(" label ")"
                 | label ( "==" | "!=" | "contains" | "starts with" | "ends with" ) string
                 | label ( "in" | "not in" ) "{" [ string ( "," string )* ] "}" )
    string    := '"' ... '"' | "'" ... "'"        (no escapes)
    label     := [a-zA-Z0-9_./-]+  (at most 512 characters)

`!=` and `not in` match when the label is absent; `==`, `in`, `contains`, `starts with`, `ends with`
need it present. An empty selector selects everything (as `all()`). `global()` matches every label set;
inside a `namespaceSelector` it means "not namespaced" (see `Selector.for_namespaces`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

MAX_LABEL_LENGTH = 512
NAMESPACE_LABEL = "projectcalico.org/namespace"
NAMESPACE_PREFIX = "pcns."
SERVICE_ACCOUNT_PREFIX = "pcsa."

_IDENT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./-")


class SelectorError(ValueError):
    """A selector that does not parse; `column` is 1-based, pointing into `text`."""

    def __init__(self, text: str, column: int, message: str) -> None:
        super().__init__(f"column {column}: {message} in selector {text!r}")
        self.text = text
        self.column = column
        self.message = message

    def pointer(self) -> str:
        """The selector and a caret under the offending column (for terminal output)."""
        return f"{self.text}\n{' ' * (self.column - 1)}^"


@dataclass(frozen=True)
class _Token:
    kind: str  # label string ( ) { } , == != in notin contains startswith endswith all global has ! && || eof
    value: str
    column: int  # 1-based


def _cut_ident(text: str, pos: int) -> int:
    end = pos
    while end < len(text) and text[end] in _IDENT_CHARS:
        end += 1
    return end


def _word_at(text: str, pos: int, word: str) -> int | None:
    """End of `word` at `pos` when it is followed by a word boundary."""
    if not text.startswith(word, pos):
        return None
    end = pos + len(word)
    if end < len(text) and text[end] in _IDENT_CHARS:
        return None
    return end


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos


def _words_at(text: str, pos: int, first: str, second: str) -> int | None:
    """`starts with`, `ends with`, `not in` (whitespace between the words optional, as Calico allows)."""
    if not text.startswith(first, pos):
        return None
    return _word_at(text, _skip_ws(text, pos + len(first)), second)


def tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    simple = {"(": "(", ")": ")", "{": "{", "}": "}", ",": ","}
    while True:
        pos = _skip_ws(text, pos)
        col = pos + 1
        if pos >= len(text):
            tokens.append(_Token("eof", "", col))
            return tokens
        c = text[pos]
        last = tokens[-1].kind if tokens else ""
        if c in simple:
            tokens.append(_Token(simple[c], c, col))
            pos += 1
        elif c in "\"'":
            end = text.find(c, pos + 1)
            if end < 0:
                raise SelectorError(text, col, "unterminated string")
            tokens.append(_Token("string", text[pos + 1 : end], col))
            pos = end + 1
        elif c == "=":
            if not text.startswith("==", pos):
                raise SelectorError(text, col, "expected '=='")
            tokens.append(_Token("==", "==", col))
            pos += 2
        elif c == "!":
            if text.startswith("!=", pos):
                tokens.append(_Token("!=", "!=", col))
                pos += 2
            else:
                tokens.append(_Token("!", "!", col))
                pos += 1
        elif c in "&|":
            if not text.startswith(c * 2, pos):
                raise SelectorError(text, col, f"expected '{c * 2}'")
            tokens.append(_Token(c * 2, c * 2, col))
            pos += 2
        elif last == "label":
            operators: tuple[tuple[str, int | None], ...] = (
                ("contains", _word_at(text, pos, "contains")),
                ("startswith", _words_at(text, pos, "starts", "with")),
                ("endswith", _words_at(text, pos, "ends", "with")),
                ("notin", _words_at(text, pos, "not", "in")),
                ("in", _word_at(text, pos, "in")),
            )
            for kind, op_end in operators:
                if op_end is not None:
                    tokens.append(_Token(kind, text[pos:op_end], col))
                    pos = op_end
                    break
            else:
                raise SelectorError(text, col, f"expected an operator after label {tokens[-1].value!r}")
        else:
            pos = _function_or_label(text, pos, tokens)


def _function_or_label(text: str, pos: int, tokens: list[_Token]) -> int:
    col = pos + 1
    for name in ("has", "all", "global"):
        if text.startswith(name + "(", pos):
            inner = _skip_ws(text, pos + len(name) + 1)
            value = ""
            if name == "has":
                end = _cut_ident(text, inner)
                if end == inner:
                    raise SelectorError(text, inner + 1, "expected a label name in has()")
                value = text[inner:end]
                _check_length(text, inner, value)
                inner = _skip_ws(text, end)
            if not text.startswith(")", inner):
                raise SelectorError(text, inner + 1, f"expected ')' to close {name}(")
            tokens.append(_Token(name, value, col))
            return inner + 1
    end = _cut_ident(text, pos)
    if end == pos:
        raise SelectorError(text, col, f"unexpected character {text[pos]!r}")
    value = text[pos:end]
    _check_length(text, pos, value)
    tokens.append(_Token("label", value, col))
    return end


def _check_length(text: str, pos: int, label: str) -> None:
    if len(label) > MAX_LABEL_LENGTH:
        raise SelectorError(text, pos + 1, f"label longer than {MAX_LABEL_LENGTH} characters")


# --- AST: each node is a predicate over a label mapping --------------------------------------------



@dataclass(frozen=True)
class Node:
    op: str  # all global has eq ne contains startswith endswith in notin not and or
    label: str = ""
    value: str = ""
    values: frozenset[str] = frozenset()
    children: tuple[Node, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.op
        if op in ("all", "global"):
            return True
        if op == "and":
            return all(c.matches(labels) for c in self.children)
        if op == "or":
            return any(c.matches(labels) for c in self.children)
        if op == "not":
            return not self.children[0].matches(labels)
        value = labels.get(self.label)
        if op == "has":
            return value is not None
        if op == "ne":
            return value != self.value
        if op == "notin":
            return value is None or value not in self.values
        if value is None:
            return False
        if op == "eq":
            return value == self.value
        if op == "in":
            return value in self.values
        if op == "contains":
            return self.value in value
        if op == "startswith":
            return value.startswith(self.value)
        return value.endswith(self.value)  # endswith

    def rewrite_for_namespaces(self) -> Node:
        """Calico's namespaceSelector rewrite: labels get the `pcns.` prefix, `all()` becomes
        `has(projectcalico.org/namespace)` and `global()` becomes `!has(projectcalico.org/namespace)`."""
        if self.op == "all":
            return Node("has", NAMESPACE_LABEL)
        if self.op == "global":
            return Node("not", children=(Node("has", NAMESPACE_LABEL),))
        if self.children:
            return Node(self.op, children=tuple(c.rewrite_for_namespaces() for c in self.children))
        return Node(self.op, NAMESPACE_PREFIX + self.label, self.value, self.values)

    def rewrite_with_prefix(self, prefix: str) -> Node:
        if self.children:
            return Node(self.op, children=tuple(c.rewrite_with_prefix(prefix) for c in self.children))
        if self.op in ("all", "global"):
            return self
        return Node(self.op, prefix + self.label, self.value, self.values)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0

    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def take(self) -> _Token:
        tok = self.tokens[self.pos]
        if tok.kind != "eof":
            self.pos += 1
        return tok

    def fail(self, tok: _Token, message: str) -> SelectorError:
        found = "the end of the selector" if tok.kind == "eof" else repr(tok.value)
        return SelectorError(self.text, tok.column, f"{message}, found {found}")

    def parse(self) -> Node:
        if self.peek().kind == "eof":
            return Node("all")
        node = self.expr()
        tok = self.peek()
        if tok.kind != "eof":
            raise self.fail(tok, "expected '&&', '||' or the end of the selector")
        return node

    def expr(self) -> Node:
        parts = [self.conj()]
        while self.peek().kind == "||":
            self.take()
            parts.append(self.conj())
        return parts[0] if len(parts) == 1 else Node("or", children=tuple(parts))

    def conj(self) -> Node:
        parts = [self.operation()]
        while self.peek().kind == "&&":
            self.take()
            parts.append(self.operation())
        return parts[0] if len(parts) == 1 else Node("and", children=tuple(parts))

    def operation(self) -> Node:
        negated = False
        while self.peek().kind == "!":
            self.take()
            negated = not negated
        node = self.term()
        return Node("not", children=(node,)) if negated else node

    def term(self) -> Node:
        tok = self.take()
        if tok.kind in ("all", "global"):
            return Node(tok.kind)
        if tok.kind == "has":
            return Node("has", tok.value)
        if tok.kind == "(":
            node = self.expr()
            close = self.take()
            if close.kind != ")":
                raise self.fail(close, "expected ')'")
            return node
        if tok.kind != "label":
            raise self.fail(tok, "expected a label, has(), all(), global(), '!' or '('")
        return self.comparison(tok.value)

    def comparison(self, label: str) -> Node:
        op = self.take()  # the tokenizer guarantees an operator after a label, or raised
        if op.kind in ("in", "notin"):
            brace = self.take()
            if brace.kind != "{":
                raise self.fail(brace, "expected '{' to start a set of strings")
            values: list[str] = []
            if self.peek().kind == "string":
                values.append(self.take().value)
                while self.peek().kind == ",":
                    self.take()
                    value = self.take()
                    if value.kind != "string":
                        raise self.fail(value, "expected a quoted string after ','")
                    values.append(value.value)
            close = self.take()
            if close.kind != "}":
                raise self.fail(close, "expected ',' or '}' in a set")
            return Node(op.kind, label, values=frozenset(values))
        kinds = {"==": "eq", "!=": "ne", "contains": "contains", "startswith": "startswith", "endswith": "endswith"}
        if op.kind not in kinds:
            raise self.fail(op, f"expected an operator after label {label!r}")
        value = self.take()
        if value.kind != "string":
            raise self.fail(value, f"expected a quoted string after {op.value!r}")
        return Node(kinds[op.kind], label, value.value)


@dataclass(frozen=True)
class Selector:
    """A parsed selector; `text` is what the policy wrote."""

    text: str
    root: Node

    def matches(self, labels: Mapping[str, str]) -> bool:
        return self.root.matches(labels)

    @property
    def selects_all(self) -> bool:
        return self.root.op == "all"

    def for_namespaces(self) -> Selector:
        """This selector as a `namespaceSelector`, evaluated on an endpoint's own labels (which carry
        its namespace's labels with the `pcns.` prefix), exactly as Calico rewrites it."""
        return Selector(self.text, self.root.rewrite_for_namespaces())

    def for_service_accounts(self) -> Selector:
        """This selector as a service-account selector (labels with the `pcsa.` prefix)."""
        return Selector(self.text, self.root.rewrite_with_prefix(SERVICE_ACCOUNT_PREFIX))


def parse(text: str) -> Selector:
    """Parse a Calico selector; raises SelectorError with the 1-based column of the problem."""
    if not isinstance(text, str):
        raise SelectorError(str(text), 1, f"a selector must be a string, got {type(text).__name__}")
    return Selector(text, _Parser(text).parse())
