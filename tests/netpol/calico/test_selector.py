"""Calico's selector language: every operator, precedence, quoting, and errors pointing at the column.

Cases worked by hand from Calico's selector documentation and libcalico-go's parser tests.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.netpol.calico import SelectorError, parse

LABELS = {"app": "web", "tier": "front-end", "k8s.io/name": "nginx-1", "env": "prod"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("", True),  # empty selects everything
        ("all()", True),
        ("global()", True),
        ("app == 'web'", True),
        ('app == "web"', True),
        ("app == 'db'", False),
        ("missing == 'x'", False),
        ("app != 'db'", True),
        ("app != 'web'", False),
        ("missing != 'x'", True),  # != matches an absent label
        ("has(app)", True),
        ("has( app )", True),
        ("has(missing)", False),
        ("!has(missing)", True),
        ("!has(app)", False),
        ("app in {'web', 'db'}", True),
        ("app in {'db'}", False),
        ("app in {}", False),
        ("missing in {'x'}", False),
        ("app not in {'db'}", True),
        ("app not in {'web'}", False),
        ("missing not in {'x'}", True),  # not in matches an absent label
        ("app notin {'db'}", True),  # Calico accepts the words run together
        ("tier contains 'end'", True),
        ("tier contains 'back'", False),
        ("missing contains ''", False),
        ("tier starts with 'front'", True),
        ("tier starts with 'end'", False),
        ("tier ends with 'end'", True),
        ("tier ends with 'front'", False),
        ("k8s.io/name == 'nginx-1'", True),
        ("app == 'web' && env == 'prod'", True),
        ("app == 'web' && env == 'dev'", False),
        ("app == 'db' || env == 'prod'", True),
        ("app == 'db' || env == 'dev'", False),
        ("!app == 'db'", True),
        ("!!app == 'web'", True),
        ("!(app == 'web' && env == 'prod')", False),
        # && binds tighter than ||: true || (false && false)
        ("app == 'web' || env == 'dev' && app == 'db'", True),
        ("(app == 'web' || env == 'dev') && app == 'db'", False),
        ("\tapp=='web'&&has(env) ", True),
    ],
)
def test_operators(selector: str, expected: bool) -> None:
    assert parse(selector).matches(LABELS) is expected


@pytest.mark.parametrize(
    ("selector", "column", "message"),
    [
        ("app = 'web'", 5, "expected '=='"),
        ("app == web", 8, "expected a quoted string after '=='"),
        ("app == 'web", 8, "unterminated string"),
        ("app", 4, "expected an operator after label 'app'"),
        ("app is 'web'", 5, "expected an operator after label 'app'"),
        ("has(app", 8, "expected ')' to close has("),
        ("has()", 5, "expected a label name in has()"),
        ("all(x)", 5, "expected ')' to close all("),
        ("(app == 'web'", 14, "expected ')'"),
        ("app == 'web' env == 'x'", 14, "expected '&&', '||' or the end"),
        ("app == 'web' & env == 'x'", 14, "expected '&&'"),
        ("app == 'web' | env == 'x'", 14, "expected '||'"),
        ("&& app == 'web'", 1, "expected a label, has(), all(), global()"),
        ("app == 'web' &&", 16, "found the end of the selector"),
        ("app in 'web'", 8, "expected '{'"),
        ("app in {'a' 'b'}", 13, "expected ',' or '}'"),
        ("app in {'a', b}", 14, "expected a quoted string after ','"),
        ("app == 'web' @", 14, "unexpected character '@'"),
    ],
)
def test_errors_point_at_the_column(selector: str, column: int, message: str) -> None:
    with pytest.raises(SelectorError) as info:
        parse(selector)
    assert info.value.column == column
    assert message in info.value.message
    assert info.value.pointer().splitlines()[1] == " " * (column - 1) + "^"


def test_label_longer_than_calico_allows() -> None:
    with pytest.raises(SelectorError, match="longer than 512"):
        parse("a" * 513 + " == 'x'")


def test_namespace_selector_rewrite() -> None:
    """As a namespaceSelector: labels are the namespace's (`pcns.`), all() = any namespaced endpoint,
    global() = a non-namespaced one (GlobalNetworkSet, host endpoint)."""
    pod = {"projectcalico.org/namespace": "shop", "pcns.team": "a"}
    global_set = {"role": "x"}
    assert parse("team == 'a'").for_namespaces().matches(pod)
    assert not parse("team == 'b'").for_namespaces().matches(pod)
    assert parse("all()").for_namespaces().matches(pod)
    assert not parse("all()").for_namespaces().matches(global_set)
    assert parse("global()").for_namespaces().matches(global_set)
    assert not parse("global()").for_namespaces().matches(pod)


# -- property: any expression tree, printed with the grammar's precedence, parses back to itself ------


KEYS = st.sampled_from(["app", "env", "k8s.io/name", "missing"])
VALUES = st.sampled_from(["web", "prod", "nginx-1", "", "x"])
Expr = tuple  # ("leaf", text, predicate) | ("and"/"or", left, right) | ("not", inner)


def _leaf() -> st.SearchStrategy[tuple]:
    def make(key: str, value: str, values: list[str], op: str) -> tuple:
        quoted = "{" + ", ".join(f"'{v}'" for v in values) + "}"
        table = {
            "==": (f"{key} == '{value}'", lambda labels: labels.get(key) == value),
            "!=": (f"{key} != \"{value}\"", lambda labels: labels.get(key) != value),
            "has": (f"has({key})", lambda labels: key in labels),
            "in": (f"{key} in {quoted}", lambda labels: key in labels and labels[key] in values),
            "not in": (f"{key} not in {quoted}", lambda labels: key not in labels or labels[key] not in values),
            "contains": (f"{key} contains '{value}'", lambda labels: key in labels and value in labels[key]),
            "starts with": (f"{key} starts with '{value}'",
                            lambda labels: key in labels and labels[key].startswith(value)),
            "ends with": (f"{key} ends with '{value}'", lambda labels: key in labels and labels[key].endswith(value)),
            "all": ("all()", lambda labels: True),
        }
        text, predicate = table[op]
        return ("leaf", text, predicate)

    ops = st.sampled_from(["==", "!=", "has", "in", "not in", "contains", "starts with", "ends with", "all"])
    return st.builds(make, KEYS, VALUES, st.lists(VALUES, max_size=3), ops)


EXPRS = st.recursive(
    _leaf(),
    lambda inner: st.one_of(
        st.tuples(st.just("not"), inner),
        st.tuples(st.sampled_from(["and", "or"]), inner, inner),
    ),
    max_leaves=12,
)


def _render(expr: tuple, parent: str = "or") -> str:
    """Print with parentheses only where precedence needs them (|| < && < !)."""
    if expr[0] == "leaf":
        return str(expr[1])
    if expr[0] == "not":
        return "!" + _render(expr[1], "not")
    op = "&&" if expr[0] == "and" else "||"
    text = f"{_render(expr[1], expr[0])} {op} {_render(expr[2], expr[0])}"
    needs = parent == "not" or (parent == "and" and expr[0] == "or")
    return f"({text})" if needs else text


def _evaluate(expr: tuple, labels: dict[str, str]) -> bool:
    if expr[0] == "leaf":
        return bool(expr[2](labels))
    if expr[0] == "not":
        return not _evaluate(expr[1], labels)
    left, right = _evaluate(expr[1], labels), _evaluate(expr[2], labels)
    return (left and right) if expr[0] == "and" else (left or right)


@settings(max_examples=300, deadline=None)
@given(EXPRS, st.dictionaries(KEYS, VALUES, max_size=3))
def test_printed_expressions_parse_back(expr: tuple, labels: dict[str, str]) -> None:
    assert parse(_render(expr)).matches(labels) is _evaluate(expr, labels)
