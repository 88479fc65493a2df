"""RFC 3339 timestamps as protojson writes them (0-9 fractional digits) → integer nanoseconds.

Accepted: `YYYY-MM-DD` `T`|`t`|` ` `HH:MM:SS` [`.` 1-9 digits] `Z`|`z`|`±HH:MM` (second 60, a leap
second, reads as the next minute's 00, as `calendar.timegm` does). No `strptime` on the hot path: the
start of each hour (`YYYY-MM-DDTHH`) is computed once and kept, minutes, seconds and offsets are
looked up in tables that also validate them, the fraction is one `int()`; a UTC timestamp of an hour
already seen is parsed inline (0.5-0.75 µs here), everything else by the general path.
"""

from __future__ import annotations

from datetime import date
from typing import Final

_SCALE: Final = tuple(10 ** (9 - n) for n in range(10))
# "MM:SS" → seconds into the hour; "HH:MM" → offset seconds. A missing key is a malformed value.
_MINUTE_SECOND: Final = {f"{m:02d}:{s:02d}": m * 60 + s for m in range(60) for s in range(61)}
_OFFSETS: Final = {f"{h:02d}:{m:02d}": h * 3600 + m * 60 for h in range(24) for m in range(60)}
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
_HOUR_CACHE_SIZE: Final = 4096
_hours: dict[str, int] = {}


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _hour_start(prefix: str, value: str) -> int:
    """Epoch seconds of `YYYY-MM-DDTHH` (any accepted separator), computed and cached."""
    if (len(prefix) != 13 or prefix[4] != "-" or prefix[7] != "-" or prefix[10] not in "Tt "
            or not (_digits(prefix[:4]) and _digits(prefix[5:7]) and _digits(prefix[8:10])
                    and _digits(prefix[11:13]))):
        raise ValueError(f"malformed timestamp {value!r}")
    hour = int(prefix[11:13])
    try:
        if hour > 23:
            raise ValueError
        day = date(int(prefix[:4]), int(prefix[5:7]), int(prefix[8:10])).toordinal()
    except ValueError:
        raise ValueError(f"date or hour out of range in {value!r}") from None
    seconds = (day - _EPOCH_ORDINAL) * 86400 + hour * 3600
    if len(_hours) >= _HOUR_CACHE_SIZE:
        _hours.clear()
    _hours[prefix] = seconds
    return seconds


def _whole_seconds(value: str) -> int:
    """Epoch seconds of the local date and time (before any offset); checks the shape up to second 19."""
    if len(value) < 20 or value[13] != ":":
        raise ValueError(f"malformed timestamp {value!r}")
    prefix = value[:13]
    hour = _hours.get(prefix)
    if hour is None:
        hour = _hour_start(prefix, value)
    into_hour = _MINUTE_SECOND.get(value[14:19])
    if into_hour is None:
        raise ValueError(f"malformed or out-of-range minutes/seconds in {value!r}")
    return hour + into_hour


def _fraction(digits: str, value: str) -> int:
    if not digits or len(digits) > 9 or not (digits.isascii() and digits.isdigit()):
        raise ValueError(f"malformed fractional seconds in {value!r}")
    return int(digits) * _SCALE[len(digits)]


def _offset(value: str) -> tuple[int, str]:
    """(offset seconds east of UTC, the fraction part `.ddd` or '') of a value ending `±HH:MM`."""
    sign = value[-6]
    offset = _OFFSETS.get(value[-5:])
    if offset is None or sign not in "+-":
        raise ValueError(f"malformed timezone in {value!r}")
    middle = value[19:-6]
    if middle and middle[0] != ".":
        raise ValueError(f"malformed timestamp {value!r}")
    return (offset if sign == "+" else -offset), middle


def parse_rfc3339_ns(value: str) -> int:
    """Nanoseconds since the epoch; raises ValueError on a malformed timestamp."""
    # the common case inline (UTC, an hour already seen): no function calls
    if len(value) >= 20 and value[13] == ":" and (value[-1] == "Z" or value[-1] == "z"):
        hour = _hours.get(value[:13])
        into_hour = _MINUTE_SECOND.get(value[14:19])
        if hour is not None and into_hour is not None:
            if len(value) == 20:
                return (hour + into_hour) * 1_000_000_000
            digits = value[20:-1]
            if value[19] == "." and 0 < len(digits) <= 9 and digits.isdigit() and digits.isascii():
                return (hour + into_hour) * 1_000_000_000 + int(digits) * _SCALE[len(digits)]
    return _parse_ns(value)


def _parse_ns(value: str) -> int:
    seconds = _whole_seconds(value)
    last = value[-1]
    if last == "Z" or last == "z":  # the common case: UTC, as Hubble writes
        if len(value) == 20:
            return seconds * 1_000_000_000
        if value[19] != ".":
            raise ValueError(f"malformed timestamp {value!r}")
        return seconds * 1_000_000_000 + _fraction(value[20:-1], value)
    offset, middle = _offset(value)
    return (seconds - offset) * 1_000_000_000 + (_fraction(middle[1:], value) if middle else 0)


def parse_rfc3339_seconds(value: str) -> int:
    """Whole seconds since the epoch (the fraction is checked, not used); raises ValueError."""
    if len(value) >= 20 and value[13] == ":" and (value[-1] == "Z" or value[-1] == "z"):
        hour = _hours.get(value[:13])
        into_hour = _MINUTE_SECOND.get(value[14:19])
        if hour is not None and into_hour is not None:
            if len(value) == 20:
                return hour + into_hour
            digits = value[20:-1]
            if value[19] == "." and 0 < len(digits) <= 9 and digits.isdigit() and digits.isascii():
                return hour + into_hour
    return _parse_seconds(value)


def _parse_seconds(value: str) -> int:
    seconds = _whole_seconds(value)
    last = value[-1]
    if last == "Z" or last == "z":
        if len(value) > 20:
            digits = value[20:-1]
            if value[19] != "." or not digits or len(digits) > 9 or not _digits(digits):
                raise ValueError(f"malformed fractional seconds in {value!r}")
        return seconds
    offset, middle = _offset(value)
    if middle:
        _fraction(middle[1:], value)
    return seconds - offset
