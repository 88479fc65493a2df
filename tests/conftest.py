from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
UPSTREAM = REPO / "tests" / "upstream"  # verbatim upstream fixtures with provenance (tests/upstream/README.md)


@pytest.fixture
def shared_samples() -> Path:
    """The upstream flow-log samples (copied from the project guide's samples, see tests/upstream)."""
    return UPSTREAM / "samples"


@pytest.fixture(autouse=True, scope="session")
def _no_ambient_cluster() -> None:
    """Tests never reach a cluster by accident: in-cluster auto-detection is off unless a test opts in
    with an explicit kubeconfig (tests/kube runs its own API server)."""
    import os

    os.environ.pop("KUBERNETES_SERVICE_HOST", None)
    os.environ.pop("KUBECONFIG", None)
