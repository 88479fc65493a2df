"""Counters of one flow family in a plain dict keyed by label tuples, rendered at scrape time.

The store enforces the cardinality contract: an operator may switch labels off (the key is
projected before lookup), live series are capped (a new label set beyond the cap is folded into
`{policy=<its policy>, other labels="__overflow__"}`), the overflow series are capped too (beyond
`max_overflow_series` of them, increments fold into the one series with every label `__overflow__`),
so totals stay exact and the series count stays below max_series + max_overflow_series + 1; series
idle for longer than the expiry are removed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from operator import itemgetter
from typing import Any

OVERFLOW = "__overflow__"
DEFAULT_MAX_OVERFLOW_SERIES = 1000


def escape_label_value(value: str) -> str:
    if not value.isascii():  # a lone surrogate cannot be encoded: the whole scrape would fail
        value = value.encode("utf-8", "replace").decode("utf-8")
    if "\\" in value or '"' in value or "\n" in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


class SeriesStore:
    """One counter family: `series[key] = [value, last_update_monotonic]`."""

    def __init__(
        self,
        name: str,
        help_text: str,
        label_names: Sequence[str],
        *,
        max_series: int,
        max_overflow_series: int = DEFAULT_MAX_OVERFLOW_SERIES,
        disabled: Iterable[str] = (),
    ) -> None:
        disabled = set(disabled)
        kept = [i for i, label in enumerate(label_names) if label not in disabled]
        self.name = name
        self.help = help_text
        self.all_label_names = tuple(label_names)
        self.label_names = tuple(label_names[i] for i in kept)
        self._project: Any = None
        if len(kept) != len(label_names):
            # itemgetter of one index returns a scalar: wrap so keys are always tuples
            getter = itemgetter(*kept) if kept else (lambda _key: ())
            self._project = (lambda key: (getter(key),)) if len(kept) == 1 else getter
        self._policy_index = self.label_names.index("policy") if "policy" in self.label_names else -1
        self.max_series = max_series
        self.max_overflow_series = max_overflow_series
        self._overflow_keys: set[tuple[str, ...]] = set()  # live per-policy overflow series
        self._all_overflow = (OVERFLOW,) * len(self.label_names)
        self.series: dict[tuple[str, ...], list[Any]] = {}
        self._rendered: dict[tuple[str, ...], str] = {}
        self.folded = 0
        self.expired = 0

    def _fold(self, key: tuple[str, ...]) -> tuple[str, ...]:
        """The per-policy overflow series of `key`; the all-`__overflow__` one once those are capped."""
        folded = tuple(value if i == self._policy_index else OVERFLOW for i, value in enumerate(key))
        if folded == self._all_overflow or folded in self.series:
            return folded
        if len(self._overflow_keys) >= self.max_overflow_series:
            return self._all_overflow
        self._overflow_keys.add(folded)
        return folded

    def add(self, key: tuple[str, ...], value: float, now: float) -> None:
        """Add `value` to the series `key` (a full label tuple in `all_label_names` order)."""
        if self._project is not None:
            key = self._project(key)
        entry = self.series.get(key)
        if entry is None:
            if len(self.series) >= self.max_series:
                self.folded += 1
                key = self._fold(key)
                entry = self.series.get(key)
            if entry is None:
                entry = self.series[key] = [0, now]
                self.labels_text(key)  # rendered once per series, here, so a scrape only joins strings
        entry[0] += value
        entry[1] = now

    def ensure(self, key: tuple[str, ...], now: float) -> None:
        """Make the series exist at 0 (pre-seeding) without counting, within the cap."""
        if self._project is not None:
            key = self._project(key)
        if key not in self.series and len(self.series) < self.max_series:
            self.series[key] = [0, now]

    def expire(self, now: float, idle_seconds: float) -> int:
        """Remove series not incremented for `idle_seconds`; returns how many."""
        if idle_seconds <= 0:
            return 0
        cutoff = now - idle_seconds
        stale = [key for key, entry in self.series.items() if entry[1] < cutoff]
        for key in stale:
            del self.series[key]
            self._rendered.pop(key, None)
            self._overflow_keys.discard(key)
        self.expired += len(stale)
        return len(stale)

    def value(self, **labels: str) -> float:
        """The value of one series by label name (tests and tools; not the hot path)."""
        key = tuple(labels.get(name, "") for name in self.label_names)
        entry = self.series.get(key)
        return entry[0] if entry else 0

    def labels_text(self, key: tuple[str, ...]) -> str:
        text = self._rendered.get(key)
        if text is None:
            text = ",".join(
                f'{name}="{escape_label_value(value)}"' for name, value in zip(self.label_names, key, strict=True)
            )
            self._rendered[key] = text
        return text

    def samples(self) -> Iterator[tuple[str, float]]:
        """(rendered label text, value) for every live series; safe against concurrent inserts."""
        for key, entry in list(self.series.items()):
            yield self.labels_text(key), entry[0]

    def __len__(self) -> int:
        return len(self.series)
