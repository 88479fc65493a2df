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


@pytest.fixture(autouse=True, scope="session")
def _no_ambient_cluster() -> None:
    """Tests never reach a cluster by accident: in-cluster auto-detection is off unless a test opts in
    with an explicit kubeconfig (tests/kube runs its own API server)."""
    import os

    os.environ.pop("KUBERNETES_SERVICE_HOST", None)
    os.environ.pop("KUBECONFIG", None)
