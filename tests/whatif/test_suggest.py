"""`suggest`: least-privilege policies that lint clean and that `whatif` of the same flows breaks nothing
with — on the bundled demo topology and on a generated one of a few hundred workloads."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest

from exporter.cli import main
from exporter.netpol.loading import load_policies
from exporter.whatif.demo_flows import lines as demo_flow_lines

from . import topology
from .flows import hubble, write_lines

DATA = Path(__file__).parent / "data"
RECORDED_DEMO = str(DATA / "demo-flows.jsonl.gz")  # frozen: exact expectations hold when the demo changes


def demo_flows(path: Path) -> str:
    """One minute of the demo's Hubble exporter-file lines as the demo generates them now."""
    write_lines(path, demo_flow_lines())
    return str(path)


def test_the_recorded_demo_is_what_the_module_wrote_then() -> None:
    recorded = gzip.decompress(Path(RECORDED_DEMO).read_bytes()).splitlines()
    assert len(recorded) == 1489 and recorded[0].startswith(b'{"flow":{"time":"2026-12-04T16:00:00.')


def suggest(capsys: pytest.CaptureFixture[str], out: Path, *argv: str) -> str:
    assert main(["suggest", *argv]) == 0
    out.write_text(capsys.readouterr().out)
    return str(out)


def whatif(capsys: pytest.CaptureFixture[str], policies: str, *argv: str) -> tuple[int, dict[str, list[dict]]]:
    code = main(["whatif", "--json", "--policies", policies, *argv])
    return code, json.loads(capsys.readouterr().out)


def test_demo_topology_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flows = demo_flows(tmp_path / "demo.jsonl")
    policies = suggest(capsys, tmp_path / "suggested.yaml", "--format", "hubble", flows)
    assert main(["lint", "--policies", policies]) == 0
    assert "no findings" in capsys.readouterr().err
    code, result = whatif(capsys, policies, "--format", "hubble", flows)
    assert code == 0 and result["breaks"] == [] and result["not_evaluated"] == []
    assert result["opens"] == []  # what the demo's policies deny stays denied


def test_demo_suggestion_is_least_privilege(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flows = RECORDED_DEMO
    policies = suggest(capsys, tmp_path / "suggested.yaml", "--format", "hubble", flows)
    loaded = {lp.policy.key: lp for lp in load_policies([policies]).policies}
    # an ingress policy per destination workload, an egress policy per source workload
    assert len(loaded) == 23
    assert "temporal/temporal-history-ingress" in loaded and "temporal/temporal-history-egress" in loaded
    text = Path(policies).read_text()
    assert "pod-template-hash" not in text and "statefulset.kubernetes.io/pod-name" not in text
    # DNS only where observed, to the DNS pods observed
    jaeger = loaded["temporal-monitoring/jaeger-egress"].policy
    assert [[(p.namespace_selector.describe(), p.pod_selector.describe())  # type: ignore[union-attr]
             for p in rule.peers or ()] for rule in jaeger.egress] == [
        [("kubernetes.io/metadata.name=kube-system", "k8s-app=kube-dns")]]
    nginx = loaded["ingress-nginx/ingress-nginx-controller-egress"]
    assert dict(nginx.policy.annotations) == {"netpol-exporter.io/lint-ignore": "no-dns"}  # its DNS was denied
    # the internet as ipBlocks; a comment on each rule says what it is for
    assert "cidr: 198.51.100.20/32" in text and "cidr: 203.0.113.57/32" in text
    assert "# temporal-workers/payment-worker → 198.51.100.20: TCP/443 (8 connections)" in text
    # connections never observed are denied: new flows of them break
    frontend = {"ID": 1, "identity": 21001, "namespace": "temporal", "pod_name": "temporal-frontend-6c9d7f8b5d-x2k9p",
                "labels": ["k8s:app=temporal-frontend", "k8s:app.kubernetes.io/part-of=temporal",
                           "k8s:io.kubernetes.pod.namespace=temporal"]}
    unseen = json.loads(gzip.decompress(Path(flows).read_bytes()).splitlines()[0])
    unseen["flow"].update(IP={"source": "10.0.1.21", "destination": "10.0.2.120"}, source=frontend,
                          verdict="FORWARDED", event_type={"type": 4},
                          destination={"identity": 24001, "namespace": "databases", "pod_name": "postgresql-0",
                                       "labels": ["k8s:app=postgresql", "k8s:io.kubernetes.pod.namespace=databases"]},
                          l4={"TCP": {"source_port": 40000, "destination_port": 5432}})
    code, result = whatif(capsys, policies, "--format", "hubble",
                          write_lines(tmp_path / "unseen.jsonl", [json.dumps(unseen).encode()]))
    assert code == 1
    assert [(r["source"], r["destination"], r["side"], r["policy"]) for r in result["breaks"]] == [
        ("temporal/temporal-frontend", "databases/postgresql", "egress", "temporal/temporal-frontend-egress")]


@pytest.mark.parametrize(("seed", "count", "namespaces"), [(13, 300, 12), (29, 450, 20)])
def test_generated_topology_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str], seed: int, count: int,
                                       namespaces: int) -> None:
    rng = random.Random(seed)
    pods = topology.workloads(rng, count, namespaces)
    calls = topology.calls(rng, pods)
    flows = write_lines(tmp_path / "flows.jsonl", topology.record(rng, calls))
    policies = suggest(capsys, tmp_path / "suggested.yaml", "--format", "hubble", flows)
    loaded = load_policies([policies])
    assert not loaded.invalid and len(loaded.policies) >= count * 4 // 3
    assert main(["lint", "--policies", policies]) == 0
    capsys.readouterr()
    code, result = whatif(capsys, policies, "--format", "hubble", flows)
    assert code == 0 and result["breaks"] == [] and result["opens"] == [] and result["not_evaluated"] == []
    # every pair of workloads that never talked is denied now: replay such connections
    talked = {(c.src.workload, c.dst.workload) for c in calls if not isinstance(c.src, topology.World)
              and not isinstance(c.dst, topology.World)}
    silent = [(a, b) for a, b in ((rng.randrange(count), rng.randrange(count)) for _ in range(200))
              if a != b and (pods[a][0].workload, pods[b][0].workload) not in talked][:50]
    assert len(silent) == 50
    unseen = [hubble(pods[a][0], pods[b][0], 100.0 + n, sport=20000 + n, dport=8000 + b % 50)
              for n, (a, b) in enumerate(silent)]
    code, result = whatif(capsys, policies, "--format", "hubble", write_lines(tmp_path / "unseen.jsonl", unseen))
    assert code == 1
    assert sum(r["connections"] for r in result["breaks"]) == len(silent)


def test_no_connection_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lost = b'{"lost_events":{"source":"PERF_EVENT_RING_BUFFER","num_events_lost":"3"},"node_name":"n"}'
    assert main(["suggest", "--format", "hubble", write_lines(tmp_path / "f.jsonl", [lost])]) == 2
    assert "no connection" in capsys.readouterr().err
    assert main(["suggest", "--format", "hubble", str(tmp_path / "missing")]) == 2


def test_calico_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from .flows import API, CLIENT, DB, WEB, calico

    lines = [calico(WEB, API, reporter="src", action="allow", started=5, port=8080),
             calico(WEB, API, reporter="dst", action="allow", started=5, port=8080),
             calico(API, DB, reporter="src", action="allow", started=2, port=5432),
             calico(API, DB, reporter="dst", action="allow", started=2, port=5432),
             calico(WEB, DB, reporter="src", action="allow", started=3, port=5432),
             calico(WEB, DB, reporter="dst", action="deny", started=3, port=5432),
             calico(CLIENT, WEB, reporter="dst", action="allow", started=7, port=443)]
    flows = write_lines(tmp_path / "flows.log", lines)
    policies = suggest(capsys, tmp_path / "suggested.yaml", "--format", "calico", flows)
    text = Path(policies).read_text()
    assert "cidr: 203.0.113.9/32" in text and "pod-template-hash" not in text
    assert main(["lint", "--policies", policies]) == 0
    capsys.readouterr()
    code, result = whatif(capsys, policies, "--format", "calico", flows)
    assert code == 0 and result == {"breaks": [], "opens": [], "not_evaluated": []}
    # web → db was denied at db's ingress: the suggestion does not allow it
    loaded = {lp.policy.key for lp in load_policies([policies]).policies}
    assert loaded == {"shop/web-ingress", "shop/web-egress", "shop/api-ingress", "shop/api-egress",
                      "shop/db-ingress"}


def test_pods_without_a_stable_label_are_never_selected_by_everything(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from .flows import API, Pod

    # two pods of one workload that share no label but their rollout hash
    a = Pod("shop", "batch", "batch-5d8f7c9b6d-k2x7p", "10.0.1.50", ("pod-template-hash=5d8f7c9b6d", "x=1"), "n")
    b = Pod("shop", "batch", "batch-5d8f7c9b6d-q9z8w", "10.0.1.51", ("pod-template-hash=5d8f7c9b6d", "y=2"), "n")
    flows = write_lines(tmp_path / "f.jsonl", [hubble(a, API, 1.0, sport=40001, dport=8080),
                                               hubble(b, API, 2.0, sport=40002, dport=8080)])
    assert main(["suggest", "--format", "hubble", flows]) == 0
    captured = capsys.readouterr()
    assert "shop/batch: its pods share no stable label" in captured.err
    assert "podSelector:\n        {}" not in captured.out and "batch" not in captured.out.split("---", 1)[1]
    assert "  ingress: []" in captured.out  # api is covered: what cannot be selected is not allowed
