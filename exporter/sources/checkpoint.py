"""A source's read position in `--state-dir`: one small JSON file per source, replaced atomically."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

from exporter.sources.metrics import SourceMetrics

log = logging.getLogger("netpol_exporter.sources.checkpoint")
# Repeat a failing checkpoint's log line at most this often.
ERROR_LOG_INTERVAL = 60.0


def checkpoint_path(state_dir: str, spec: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", spec)[-80:].strip("_")
    digest = hashlib.sha256(spec.encode()).hexdigest()[:10]
    return Path(state_dir) / f"{safe}-{digest}.json"


class Checkpoint:
    def __init__(self, state_dir: str, spec: str, metrics: SourceMetrics) -> None:
        self.spec = spec
        self.path = checkpoint_path(state_dir, spec)
        self.metrics = metrics
        self._last_error_log = 0.0
        self.last_saved: dict[str, Any] | None = None

    def load(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("%s: cannot read checkpoint %s (%s); starting without it", self.spec, self.path, exc)
            return None
        if not isinstance(data, dict) or data.get("spec") != self.spec:
            log.warning("%s: checkpoint %s is not this source's; ignoring it", self.spec, self.path)
            return None
        self.last_saved = data
        return data

    def save(self, data: dict[str, Any]) -> bool:
        """Write atomically (temp file, fsync, rename, fsync dir); False (logged, counted) on failure."""
        data = {"spec": self.spec, **data}
        if data == self.last_saved:
            return True
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "w") as out:
                json.dump(data, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            self.metrics.inc(self.metrics.checkpoint_errors, self.spec)
            now = time.monotonic()
            if now - self._last_error_log >= ERROR_LOG_INTERVAL:
                self._last_error_log = now
                log.error("%s: cannot write checkpoint %s: %s; still reading, but a restart will not resume "
                          "exactly (netpol_exporter_checkpoint_errors_total counts failures)",
                          self.spec, self.path, exc.strerror or exc)
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            return False
        self.last_saved = data
        return True
