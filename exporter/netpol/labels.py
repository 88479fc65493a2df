"""Label sets and label selectors (`matchLabels` + `matchExpressions`), as Kubernetes matches them."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from exporter.netpol.errors import PolicyInvalid

_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(f"^{_NAME}$")
_LABEL_VALUE = re.compile(f"^({_NAME})?$")

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


class Labels(dict[str, str]):
    """An immutable, hashable label map (usable as a cache key); a dict for C-speed lookups."""

    __slots__ = ("_hash",)

    def __init__(self, labels: Mapping[str, str] | None = None) -> None:
        super().__init__(labels or {})
        self._hash = hash(frozenset(self.items()))

    def __hash__(self) -> int:  # type: ignore[override]
        return self._hash

    def _immutable(self, *args: object, **kwargs: object) -> None:
        raise TypeError("Labels are immutable")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _immutable  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Labels({dict(self)!r})"


def freeze(labels: Mapping[str, str] | None) -> Labels:
    return labels if type(labels) is Labels else Labels(labels)


@dataclass(frozen=True)
class Requirement:
    """One selector requirement; `matchLabels` entries become `In` with one value."""

    key: str
    operator: str  # In | NotIn | Exists | DoesNotExist
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "In":
            return present and labels[self.key] in self.values
        if self.operator == "NotIn":
            return not present or labels[self.key] not in self.values
        if self.operator == "Exists":
            return present
        return not present  # DoesNotExist


@dataclass(frozen=True)
class LabelSelector:
    """A parsed selector. No requirements = selects everything (the empty selector `{}`)."""

    requirements: tuple[Requirement, ...] = ()

    def __post_init__(self) -> None:
        # Precomputed for speed: exact key=value pairs, then the other requirements.
        exact = tuple(
            (r.key, next(iter(r.values))) for r in self.requirements if r.operator == "In" and len(r.values) == 1
        )
        object.__setattr__(self, "_exact", exact)
        object.__setattr__(self, "_exact_set", frozenset(exact))
        others = tuple(r for r in self.requirements if not (r.operator == "In" and len(r.values) == 1))
        object.__setattr__(self, "_others", others)

    def matches(self, labels: Mapping[str, str]) -> bool:
        for key, value in self._exact:  # type: ignore[attr-defined]
            if labels.get(key) != value:
                return False
        return all(r.matches(labels) for r in self._others)  # type: ignore[attr-defined]

    @property
    def exact_pairs(self) -> frozenset[tuple[str, str]]:
        """The key=value pairs every selected object carries (matchLabels and one-value `In`)."""
        return self._exact_set  # type: ignore[attr-defined]

    def index_key(self) -> tuple[str, str] | None:
        """One key=value every selected object carries (to index selectors by), if any."""
        exact: tuple[tuple[str, str], ...] = self._exact  # type: ignore[attr-defined]
        return min(exact) if exact else None

    @property
    def selects_all(self) -> bool:
        return not self.requirements

    @property
    def specificity(self) -> int:
        """How many requirements narrow this selector (used to rank policies for attribution)."""
        return len(self.requirements)

    def exact_value(self, key: str) -> str | None:
        """The single value `key` must have, when the selector pins it (matchLabels or `In [v]`)."""
        for r in self.requirements:
            if r.key == key and r.operator == "In" and len(r.values) == 1:
                return next(iter(r.values))
        return None

    def describe(self) -> str:
        if not self.requirements:
            return "{}"
        parts = []
        for r in self.requirements:
            vals = ",".join(sorted(r.values))
            if r.operator == "In" and len(r.values) == 1:
                parts.append(f"{r.key}={vals}")
            elif r.operator in ("In", "NotIn"):
                parts.append(f"{r.key} {r.operator.lower()} ({vals})")
            elif r.operator == "Exists":
                parts.append(r.key)
            else:
                parts.append(f"!{r.key}")
        return ",".join(parts)


def validate_label_key(key: Any, path: str) -> str:
    """A qualified name: optional DNS-subdomain prefix + '/' + name of at most 63 characters."""
    if not isinstance(key, str) or not key:
        raise PolicyInvalid(path, f"label key must be a non-empty string, got {key!r}")
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        raise PolicyInvalid(path, f"invalid label key prefix in {key!r}")
    if len(name) > 63 or not _LABEL_NAME.match(name):
        raise PolicyInvalid(path, f"invalid label key {key!r}")
    return key


def validate_label_value(value: Any, path: str) -> str:
    if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
        raise PolicyInvalid(path, f"invalid label value {value!r}")
    return value


def as_mapping(obj: Any, path: str) -> Mapping[str, Any]:
    """`obj` as a mapping ({} for null); PolicyInvalid naming `path` otherwise."""
    if obj is None:
        return {}
    if not isinstance(obj, Mapping):
        raise PolicyInvalid(path, f"expected a mapping, got {type(obj).__name__}")
    return obj


def as_list(obj: Any, path: str) -> list[Any] | None:
    """A list, or None when absent; PolicyInvalid naming `path` for anything else."""
    if obj is None:
        return None
    if not isinstance(obj, list):
        raise PolicyInvalid(path, f"expected a list, got {type(obj).__name__}")
    return obj


def whole_number(obj: Any, path: str, low: int, high: int) -> int:
    """An integer from `low` to `high` (not a boolean); PolicyInvalid naming `path` otherwise."""
    if isinstance(obj, bool) or not isinstance(obj, int) or not low <= obj <= high:
        raise PolicyInvalid(path, f"must be a whole number from {low} to {high}, got {obj!r}")
    return obj


def parse_selector(obj: Any, path: str, key_of: Callable[[Any, str], str] = validate_label_key,
                   value_of: Callable[[Any, str], str] = validate_label_value,
                   kind: str = "a label selector") -> LabelSelector:
    """Parse a LabelSelector object (`{}` or None-valued fields select everything).

    `key_of` and `value_of` check (and may rewrite) each key and value: Kubernetes' label syntax by
    default; Cilium's EndpointSelector passes its own (source prefixes, any string).
    """
    sel = as_mapping(obj, path)
    unknown = set(sel) - {"matchLabels", "matchExpressions"}
    if unknown:
        raise PolicyInvalid(path, f"unknown field(s) {sorted(unknown)} in {kind}")
    reqs: list[Requirement] = []
    for key, value in as_mapping(sel.get("matchLabels"), f"{path}.matchLabels").items():
        name = key_of(key, f"{path}.matchLabels")
        reqs.append(Requirement(name, "In", frozenset([value_of(value, f"{path}.matchLabels.{key}")])))
    exprs = sel.get("matchExpressions") or []
    if not isinstance(exprs, list):
        raise PolicyInvalid(f"{path}.matchExpressions", "expected a list")
    for i, expr in enumerate(exprs):
        epath = f"{path}.matchExpressions[{i}]"
        e = as_mapping(expr, epath)
        key = key_of(e.get("key"), f"{epath}.key")
        op = e.get("operator")
        if op not in OPERATORS:
            raise PolicyInvalid(f"{epath}.operator", f"must be one of {', '.join(OPERATORS)}, got {op!r}")
        values = e.get("values") or []
        if not isinstance(values, list):
            raise PolicyInvalid(f"{epath}.values", "expected a list")
        if op in ("In", "NotIn") and not values:
            raise PolicyInvalid(f"{epath}.values", f"must be non-empty when operator is {op}")
        if op in ("Exists", "DoesNotExist") and values:
            raise PolicyInvalid(f"{epath}.values", f"must be empty when operator is {op}")
        reqs.append(Requirement(key, op, frozenset(value_of(v, f"{epath}.values[{j}]") for j, v in enumerate(values))))
    return LabelSelector(tuple(reqs))
