"""exporter.timeparse against datetime on random timestamps of every accepted RFC 3339 form."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from exporter.timeparse import parse_rfc3339_ns, parse_rfc3339_seconds

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SEPARATORS = ("T", "t", " ")


def _random_case(rng: random.Random, separator: str, digits: int, zone: str) -> tuple[str, int]:
    """(timestamp text, its nanoseconds since the epoch computed by datetime)."""
    moment = datetime(1900, 1, 1) + timedelta(seconds=rng.randrange(300 * 365 * 86400))
    fraction = "".join(rng.choice("0123456789") for _ in range(digits))
    if zone == "offset":
        offset = timedelta(minutes=rng.randrange(-(23 * 60 + 59), 23 * 60 + 60))
        sign = "-" if offset < timedelta(0) else "+"
        hours, minutes = divmod(abs(offset) // timedelta(minutes=1), 60)
        zone_text = f"{sign}{hours:02d}:{minutes:02d}"
        tz = timezone(offset)
    else:
        zone_text, tz = zone, UTC
    text = moment.strftime(f"%Y-%m-%d{separator}%H:%M:%S") + (f".{fraction}" if digits else "") + zone_text
    expected = (moment.replace(tzinfo=tz) - EPOCH) // timedelta(seconds=1) * 1_000_000_000
    return text, expected + (int(fraction.ljust(9, "0")) if digits else 0)


@pytest.mark.parametrize("separator", SEPARATORS)
@pytest.mark.parametrize("zone", ["Z", "z", "offset"])
def test_random_timestamps_of_every_form_match_datetime(separator: str, zone: str) -> None:
    rng = random.Random(f"{separator}{zone}")
    for digits in range(10):
        for _ in range(300):
            text, expected = _random_case(rng, separator, digits, zone)
            for _ in range(2):  # the first parse computes the hour, the second takes the cached fast path
                assert parse_rfc3339_ns(text) == expected, text
                assert parse_rfc3339_seconds(text) == expected // 1_000_000_000, text


def test_day_boundaries_leap_days_and_negative_offsets() -> None:
    assert parse_rfc3339_ns("2024-02-29T23:59:59.999999999Z") == 1709251199_999999999
    assert parse_rfc3339_ns("2024-03-01T00:00:00Z") == 1709251200_000000000
    assert parse_rfc3339_ns("2024-03-01T01:30:00+01:30") == 1709251200_000000000
    assert parse_rfc3339_ns("2024-02-29T22:00:00-02:00") == 1709251200_000000000
    assert parse_rfc3339_ns("1969-12-31T23:59:59.5Z") == -500_000_000
    # a leap second reads as the next minute's 00, as calendar.timegm does
    assert parse_rfc3339_seconds("2016-12-31T23:59:60Z") == parse_rfc3339_seconds("2017-01-01T00:00:00Z")


@pytest.mark.parametrize("value", [
    "2023-02-29T10:00:00Z",  # not a leap year
    "2024-04-31T10:00:00Z",
    "2024-13-01T10:00:00Z",
    "2024-00-01T10:00:00Z",
    "0000-01-01T10:00:00Z",
    "2024-05-01T24:00:00Z",
    "2024-05-01T10:60:00Z",
    "2024-05-01T10:00:61Z",
    "2024-05-01T10:00:00+24:00",
    "2024-05-01T10:00:00+02:60",
    "2024-05-01T10:00:00*02:00",
    "2024-05-01T10:00:00.5+02:00x",
    "2024-05-01T10:00:00 +02:00",
    "2024-05-01X10:00:00Z",
    "2024/05/01T10:00:00Z",
    "2024-05-01T10-00-00Z",
    "2024-05-01T1:00:00Z",
    "2024-5-01T10:00:00Z",
    "2024-05-01T10:00:00.Z",
    "2024-05-01T10:00:00,5Z",
    "2024-05-01T10:00:00.+5Z",
    "2024-05-01T10:00:00.1234567890Z",
    "2024-05-01T10:00:00.\u0661Z",  # a non-ASCII digit
    "\u0662024-05-01T10:00:00Z",
    "2024-05-01T1\u0660:00:00Z",
    "2024-05-01T10:00:00",
    "2024-05-01T10:00Z",
    "2024-05-01",
    "",
])
def test_malformed_timestamps_raise(value: str) -> None:
    parse_rfc3339_ns("2024-05-01T10:59:59Z")  # the hour most of them share is cached: both paths are checked
    with pytest.raises(ValueError):
        parse_rfc3339_ns(value)
    with pytest.raises(ValueError):
        parse_rfc3339_seconds(value)
