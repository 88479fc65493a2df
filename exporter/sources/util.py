"""Small async helpers shared by the sources."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable


async def wait_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to `seconds`; True as soon as `stop` is set."""
    if stop.is_set():
        return True
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()


async def until_stopped(stop: asyncio.Event, work: Awaitable[None]) -> None:
    """Run `work` until it returns or `stop` is set (then cancel it and wait for it to unwind)."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class Backoff:
    """Exponential backoff with full jitter in [delay/2, delay], capped."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial, self.maximum = initial, max(initial, maximum)
        self.delay = initial

    def next(self) -> float:
        current = self.delay
        self.delay = min(self.maximum, self.delay * 2)
        return random.uniform(current / 2, current)

    def reset(self) -> None:
        self.delay = self.initial
