"""Calico's selector language: every operator, precedence, quoting, and errors pointing at the column.

Cases worked by hand from Calico's selector documentation and libcalico-go's parser tests.
"""

from __future__ import annotations

import pytest

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
