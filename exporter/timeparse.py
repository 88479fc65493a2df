"""RFC 3339 timestamps as protojson writes them (0-9 fractional digits) → integer nanoseconds."""

from __future__ import annotations

import calendar
import time
from functools import lru_cache


@lru_cache(maxsize=4096)
def _epoch_seconds(prefix: str) -> int:
    # prefix is "YYYY-MM-DDTHH:MM:SS"; cached because a stream repeats each second many times.
    return calendar.timegm(time.strptime(prefix, "%Y-%m-%dT%H:%M:%S"))


def parse_rfc3339_ns(value: str) -> int:
    """Nanoseconds since the epoch; raises ValueError on a malformed timestamp."""
    if len(value) < 20:
        raise ValueError(f"malformed timestamp {value!r}")
    seconds = _epoch_seconds(value[:19])
    rest = value[19:]
    nanos = 0
    if rest.startswith("."):
        end = 1
        while end < len(rest) and rest[end].isdigit():
            end += 1
        digits = rest[1:end]
        if not digits or len(digits) > 9:
            raise ValueError(f"malformed fractional seconds in {value!r}")
        nanos = int(digits.ljust(9, "0"))
        rest = rest[end:]
    if rest in ("Z", "z"):
        offset = 0
    elif len(rest) == 6 and rest[0] in "+-" and rest[3] == ":":
        offset = (int(rest[1:3]) * 3600 + int(rest[4:6]) * 60) * (1 if rest[0] == "+" else -1)
    else:
        raise ValueError(f"malformed timezone in {value!r}")
    return (seconds - offset) * 1_000_000_000 + nanos
