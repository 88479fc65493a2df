from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO / ".." / "shared").resolve()


@pytest.fixture
def shared_samples() -> Path:
    """../shared/samples, or skip when the shared folder is not beside the checkout."""
    samples = SHARED / "samples"
    if not samples.is_dir():
        pytest.skip("../shared/samples is not present beside this checkout")
    return samples
