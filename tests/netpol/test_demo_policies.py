"""The demo's shipped policies: the seed's as written, plus the sandbox's Cilium policies; all valid."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from exporter.netpol.loading import load_policies
from exporter.service.demo import DEMO_POLICIES

SEED = Path(__file__).resolve().parents[1] / "upstream" / "seed" / "network-policies-guide.md"


def test_the_seed_policies_are_the_guides_verbatim() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", SEED.read_text(), re.S)
    from_guide = [d for b in blocks for d in yaml.safe_load_all(b)
                  if isinstance(d, dict) and d.get("kind") == "NetworkPolicy"
                  and d["metadata"]["namespace"] not in ("temporal-dev", "temporal-production")]
    shipped = [d for d in yaml.safe_load_all((Path(DEMO_POLICIES) / "temporal-seed.yaml").read_text()) if d]
    assert shipped == from_guide and len(shipped) == 17


def test_every_shipped_policy_loads_and_both_cilium_kinds_are_there() -> None:
    loaded = load_policies([DEMO_POLICIES])
    assert not loaded.invalid and not loaded.notes
    kinds = {lp.policy.kind for lp in loaded.policies}
    assert kinds == {"NetworkPolicy", "CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy"}
