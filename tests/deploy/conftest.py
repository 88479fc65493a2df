from __future__ import annotations

import pytest

from tests.deploy.manifests import KUSTOMIZATIONS, OVERLAYS, Rendered, RenderError, rendered


def _rendered_or_fail(name: str) -> Rendered:
    try:
        return rendered(name)
    except RenderError as exc:
        pytest.fail(str(exc))


@pytest.fixture(params=sorted(OVERLAYS))
def overlay(request: pytest.FixtureRequest) -> Rendered:
    """Each overlay (a complete install), rendered by `kubectl kustomize`."""
    return _rendered_or_fail(request.param)


@pytest.fixture(params=sorted(KUSTOMIZATIONS))
def kustomization(request: pytest.FixtureRequest) -> Rendered:
    """The base and each overlay, rendered."""
    return _rendered_or_fail(request.param)
