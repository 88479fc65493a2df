"""`suggest --as calico [--tier NAME]`: Calico policies that round-trip through `whatif` (Calico
semantics) with zero breaks, on the demo, on generated topologies and on Calico flow records; and that
deny what was never observed."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from exporter.cli import main
from exporter.netpol.calico.loader import load_documents
from exporter.netpol.loading import documents

from . import topology
from .flows import API, CLIENT, DB, WEB, calico, hubble, write_lines
from .test_suggest import RECORDED_DEMO, suggest, whatif


def loaded_set(path: str) -> object:
    return load_documents(documents([path]), "calico")


@pytest.mark.parametrize("tier", [None, "security"])
def test_demo_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str], tier: str | None) -> None:
    extra = ["--tier", tier] if tier else []
    policies = suggest(capsys, tmp_path / "s.yaml", "--as", "calico", *extra, "--format", "hubble", RECORDED_DEMO)
    text = Path(policies).read_text()
    assert "apiVersion: projectcalico.org/v3" in text and "networking.k8s.io" not in text
    policy_set = loaded_set(policies)
    labels = {p.label for p in policy_set.policies}  # type: ignore[attr-defined]
    prefix = f"{tier}." if tier else ""
    assert f"temporal/{prefix}temporal-history-ingress" in labels and len(labels) == 23
    if tier:
        assert "kind: Tier" in text and policy_set.tiers[tier].order == 100  # type: ignore[attr-defined]
    code, result = whatif(capsys, policies, "--format", "hubble", RECORDED_DEMO)
    assert code == 0 and result["breaks"] == [] and result["not_evaluated"] == [] and result["opens"] == []
    assert main(["lint", "--policies", policies]) == 0
    capsys.readouterr()


@pytest.mark.parametrize(("seed", "count", "namespaces"), [(13, 300, 12)])
def test_generated_topology_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str], seed: int, count: int,
                                       namespaces: int) -> None:
    rng = random.Random(seed)
    pods = topology.workloads(rng, count, namespaces)
    calls = topology.calls(rng, pods)
    flows = write_lines(tmp_path / "flows.jsonl", topology.record(rng, calls))
    policies = suggest(capsys, tmp_path / "s.yaml", "--as", "calico", "--tier", "app", "--format", "hubble", flows)
    code, result = whatif(capsys, policies, "--format", "hubble", flows)
    assert code == 0 and result["breaks"] == [] and result["opens"] == [] and result["not_evaluated"] == []
    talked = {(c.src.workload, c.dst.workload) for c in calls if not isinstance(c.src, topology.World)
              and not isinstance(c.dst, topology.World)}
    silent = [(a, b) for a, b in ((rng.randrange(count), rng.randrange(count)) for _ in range(200))
              if a != b and (pods[a][0].workload, pods[b][0].workload) not in talked][:50]
    unseen = [hubble(pods[a][0], pods[b][0], 100.0 + n, sport=20000 + n, dport=8000 + b % 50)
              for n, (a, b) in enumerate(silent)]
    code, result = whatif(capsys, policies, "--format", "hubble", write_lines(tmp_path / "unseen.jsonl", unseen))
    assert code == 1 and sum(r["connections"] for r in result["breaks"]) == len(silent)
    assert all(r["policy"].split("/")[1].startswith("app.") for r in result["breaks"])


def test_calico_flows_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = [calico(WEB, API, reporter="src", action="allow", started=5, port=8080),
             calico(WEB, API, reporter="dst", action="allow", started=5, port=8080),
             calico(API, DB, reporter="src", action="allow", started=2, port=5432),
             calico(API, DB, reporter="dst", action="allow", started=2, port=5432),
             calico(API, DB, reporter="src", action="allow", started=1, port=53, proto="udp"),
             calico(WEB, DB, reporter="src", action="allow", started=3, port=5432),
             calico(WEB, DB, reporter="dst", action="deny", started=3, port=5432),
             calico(CLIENT, WEB, reporter="dst", action="allow", started=7, port=443)]
    flows = write_lines(tmp_path / "flows.log", lines)
    policies = suggest(capsys, tmp_path / "s.yaml", "--as", "calico", "--format", "calico", flows)
    text = Path(policies).read_text()
    assert 'nets: ["203.0.113.9/32"]' in text and "selector: \"app == 'api' && tier == 'backend'\"" in text
    assert "    protocol: UDP\n" in text and "ports: [53]" in text
    code, result = whatif(capsys, policies, "--format", "calico", flows)
    assert code == 0 and result == {"breaks": [], "opens": [], "not_evaluated": []}
    # the denied web → db stays denied; api → db on another port is new and breaks
    unseen = write_lines(tmp_path / "unseen.log", [calico(API, DB, reporter="src", action="allow", started=1,
                                                          port=6379)])
    code, result = whatif(capsys, policies, "--format", "calico", unseen)
    assert code == 1 and [(r["side"], r["policy"]) for r in result["breaks"]] == [
        ("egress", "shop/api-egress")]


def test_tier_only_with_calico(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flows = write_lines(tmp_path / "f.log", [calico(WEB, API, reporter="src", action="allow", started=1, port=80)])
    assert main(["suggest", "--tier", "x", "--format", "calico", flows]) == 2
    assert "--tier is for --as calico" in capsys.readouterr().err
    assert main(["suggest", "--as", "calico", "--tier", "Bad_Tier", "--format", "calico", flows]) == 2
    assert "not a valid tier name" in capsys.readouterr().err


def test_json_quoting_of_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flows = write_lines(tmp_path / "f.log", [calico(WEB, API, reporter="src", action="allow", started=1, port=80)])
    policies = suggest(capsys, tmp_path / "s.yaml", "--as", "calico", "--format", "calico", flows)
    names = sorted(p.label for p in loaded_set(policies).policies)  # type: ignore[attr-defined]
    assert names == ["shop/api-ingress", "shop/web-egress"]
    assert json.dumps("shop") in Path(policies).read_text()
