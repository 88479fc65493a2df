"""RFC 3339 timestamps as protojson writes them (0-9 fractional digits) → integer nanoseconds."""

from __future__ import annotations

import calendar
import time
from functools import lru_cache

_SCALE = tuple(10 ** (9 - n) for n in range(10))


@lru_cache(maxsize=4096)
def _epoch_seconds(prefix: str) -> int:
    # prefix is "YYYY-MM-DDTHH:MM:SS"; cached because a stream repeats each second many times.
    return calendar.timegm(time.strptime(prefix, "%Y-%m-%dT%H:%M:%S"))


def _fraction(digits: str, value: str) -> int:
    if not digits or len(digits) > 9 or not (digits.isascii() and digits.isdigit()):
        raise ValueError(f"malformed fractional seconds in {value!r}")
    return int(digits) * _SCALE[len(digits)]


def parse_rfc3339_ns(value: str) -> int:
    """Nanoseconds since the epoch; raises ValueError on a malformed timestamp."""
    if len(value) < 20 or value[10] not in "Tt ":
        raise ValueError(f"malformed timestamp {value!r}")
    seconds = _epoch_seconds(value[:10] + "T" + value[11:19])
    if value[-1] in "Zz":  # the common case: UTC, as Hubble writes
        if len(value) == 20:
            return seconds * 1_000_000_000
        if value[19] != ".":
            raise ValueError(f"malformed timestamp {value!r}")
        return seconds * 1_000_000_000 + _fraction(value[20:-1], value)
    zone = value[-6:]
    if len(zone) != 6 or zone[0] not in "+-" or zone[3] != ":" or not (zone[1:3] + zone[4:]).isdigit():
        raise ValueError(f"malformed timezone in {value!r}")
    middle = value[19:-6]
    if middle and middle[0] != ".":
        raise ValueError(f"malformed timestamp {value!r}")
    offset = (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60) * (1 if zone[0] == "+" else -1)
    return (seconds - offset) * 1_000_000_000 + (_fraction(middle[1:], value) if middle else 0)


def parse_rfc3339_seconds(value: str) -> int:
    """Whole seconds since the epoch (the fraction is checked, not used); raises ValueError."""
    if len(value) < 20 or value[10] not in "Tt ":
        raise ValueError(f"malformed timestamp {value!r}")
    if value[-1] in "Zz" and (len(value) == 20 or value[19] == "."):
        seconds = _epoch_seconds(value[:19] if value[10] == "T" else value[:10] + "T" + value[11:19])
        if len(value) > 20 and not (len(value) <= 30 and value[20:-1].isdigit() and value[20:-1].isascii()):
            raise ValueError(f"malformed fractional seconds in {value!r}")
        return seconds
    return parse_rfc3339_ns(value) // 1_000_000_000
