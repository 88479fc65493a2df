"""The API example in docs/calico-policies.md runs as written and gives the verdict its comments say."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

DOC = Path(__file__).resolve().parents[3] / "docs" / "calico-policies.md"

DOCUMENTS = """
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: api-ingress, namespace: shop}
spec:
  selector: app == 'api'
  ingress: [{action: Allow, protocol: TCP, source: {selector: app == 'web'}, destination: {ports: ['8000:8999']}}]
"""


def test_api_example_runs() -> None:
    block = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert block is not None
    scope: dict[str, object] = {"documents": list(yaml.safe_load_all(DOCUMENTS))}
    exec(compile(block.group(1), str(DOC), "exec"), scope)  # our own documentation
    verdict = scope["verdict"]
    assert verdict.ingress.status == "allow"  # type: ignore[attr-defined]
    assert verdict.ingress.label == "shop/api-ingress"  # type: ignore[attr-defined]
    assert verdict.egress.label == "default-allow"  # type: ignore[attr-defined]
    assert verdict.allowed is True  # type: ignore[attr-defined]
