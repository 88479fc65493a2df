"""The one small interface every source implements."""

from __future__ import annotations

import abc
import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from exporter.pipeline import Pipeline
from exporter.selfmetrics import SourceStats


@dataclass
class SourceStatus:
    """What the landing page and /readyz show for a source."""

    state: str = "starting"  # starting | running | waiting | reconnecting | failed | stopped
    detail: str = ""  # last error or what it waits for; never a secret
    lag_seconds: float | None = None  # how far behind the newest data the source is
    since: float = field(default_factory=time.time)


class Source(abc.ABC):
    """A running input. `spec` is its source spec (also the `source` label of its self-metrics)."""

    #: input format name for exporter.decoders.get_decoder
    format: str = ""

    def __init__(self, spec: str, pipeline: Pipeline) -> None:
        self.spec = spec
        self.pipeline = pipeline
        self.stats: SourceStats = pipeline.source(spec, self.format)
        self.status = SourceStatus()

    def set_state(self, state: str, detail: str = "") -> None:
        if state != self.status.state or detail != self.status.detail:
            self.status.state, self.status.detail, self.status.since = state, detail, time.time()
        self.stats.up = state == "running"

    @abc.abstractmethod
    async def run(self, stop: asyncio.Event) -> None:
        """Read until `stop` is set; handle its own reconnects/retries; never raise for bad input."""

    async def close(self) -> None:
        """Flush checkpoints and release resources (called once after run() returns)."""
        return None

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.spec,
            "format": self.format,
            "state": self.status.state,
            "detail": self.status.detail,
            "lag_seconds": self.status.lag_seconds,
            "last_event_time": self.stats.last_event_time or None,
            "events_read": self.stats.read,
            "events_counted": self.stats.counted,
            "events_invalid": self.stats.invalid,
        }
