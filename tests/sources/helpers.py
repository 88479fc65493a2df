"""Shared helpers for the source tests: real lines, totals, running a source until a condition holds."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from exporter.model import Family
from exporter.pipeline import Pipeline
from exporter.sources.base import Source


def calico_line(packets: int = 1, action: str = "deny", **fields: Any) -> bytes:
    """A Calico flows.log record adding `packets` to dropped (deny) or allowed (allow)."""
    rec: dict[str, Any] = {
        "start_time": 1700000000, "end_time": 1700000300,
        "source_name": "-", "source_name_aggr": "test-client-6d4cf56db6-*", "source_namespace": "client",
        "source_type": "wep", "dest_name": "-", "dest_name_aggr": "api-7d9f8b6c5d-*", "dest_namespace": "api",
        "dest_port": 8080, "dest_type": "wep", "proto": "tcp", "action": action, "reporter": "dst",
        "policies": {"enforced_policies": [f"0|default|api/knp.default.api-policy|{action}|-1"]},
        "packets_in": packets, "packets_out": 0,
    }
    rec.update(fields)
    return json.dumps(rec).encode() + b"\n"


def total(pipeline: Pipeline, family: Family = Family.DROPPED) -> float:
    return sum(value for _labels, value in pipeline.stores[family].samples())


async def until(condition: Callable[[], bool], timeout: float = 3.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


class Running:
    """`async with Running(source):` runs source.run(stop) in a task; on exit sets stop and calls close()."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Running:
        self.task = asyncio.create_task(self.source.run(self.stop))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, 5)
        await self.source.close()
