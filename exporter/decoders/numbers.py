"""Counts a source could never write (negative, non-finite, beyond uint64) make a line invalid."""

from __future__ import annotations

from typing import Final

from exporter.model import DecodeError

UINT64_MAX: Final = 2**64 - 1


def unsigned(value: int | str | None, field: str) -> int:
    """A uint32/uint64 count (protojson writes uint64 as a decimal string); None is 0."""
    if value is None:
        return 0
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit()):
            raise DecodeError(f"expected an unsigned integer, got {value!r}", field)
        value = int(value)
    if not 0 <= value <= UINT64_MAX:
        raise DecodeError(f"{value} is out of range for an unsigned 64-bit count", field)
    return value
