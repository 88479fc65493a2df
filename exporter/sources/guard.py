"""Every exception a line's decode raises is that line's `invalid`, never the batch's end.

A line nested tens of thousands deep raises RecursionError from the JSON parser; a decoder bug may raise
anything. Out of Pipeline.ingest such an exception would abandon the rest of the batch (a file source
restarting past the valid lines after it, a push answered 500 after counting part of its batch).
"""

from __future__ import annotations

from exporter.decoders import Decoded
from exporter.model import DecodeError
from exporter.selfmetrics import SourceStats


def guard_decoder(stats: SourceStats) -> None:
    """Make `stats.decode` turn any exception into a DecodeError naming it (idempotent)."""
    decode = stats.decode
    if getattr(decode, "guarded", False):
        return

    def guarded(line: bytes) -> Decoded:
        try:
            return decode(line)
        except DecodeError:
            raise
        except RecursionError:
            raise DecodeError("nested too deeply to decode") from None
        except Exception as exc:
            raise DecodeError(f"cannot decode: {type(exc).__name__}: {exc}") from None

    guarded.guarded = True  # type: ignore[attr-defined]
    stats.decode = guarded
