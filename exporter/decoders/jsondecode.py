"""Typed JSON decoding with msgspec, malformed input turned into DecodeError."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import msgspec

from exporter.model import DecodeError

T = TypeVar("T")


def typed_json_decoder(type_: type[T]) -> Callable[[bytes], T]:
    """A decoder of `type_` (decoding only its declared fields) that raises DecodeError on bad input."""
    decode = msgspec.json.Decoder(type_).decode

    def decode_or_raise(data: bytes) -> T:
        try:
            return decode(data)
        except msgspec.ValidationError as exc:  # a value of the wrong type; the message has its $.path
            raise DecodeError(str(exc)) from None
        except msgspec.DecodeError as exc:
            raise DecodeError(f"not valid JSON: {exc}") from None

    return decode_or_raise
