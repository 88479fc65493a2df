"""`whatif` on recorded flows: connections, breaks/opens/not-evaluated counts, output schema, exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from exporter.cli import main
from exporter.whatif.hubble_events import decode_hubble
from exporter.whatif.tracking import Connection, HubbleTracker

from .flows import API, CLIENT, COREDNS, DB, REMOTE, WEB, Pod, World, calico, goldmane, hubble, stamp, write_lines

DATA = Path(__file__).parent / "data"
PROPOSED = str(DATA / "proposed.yaml")
OTHER_CLIENT = World("198.51.100.7")
REMOTE_POD = Pod("", "", "", "10.9.9.9", (), "node-b")


def recorded_day(tmp_path: Path) -> list[str]:
    """Two nodes' exporter files: traces only, verdicts only, mixed, replies and retransmissions."""
    a: list[bytes] = []  # node-a: web, coredns
    b: list[bytes] = []  # node-b: api, db
    # traces only: web → api:8080, three connections, with replies (flagged and not) and a retransmission
    for n, t in enumerate((10.0, 20.0, 30.0)):
        sport = 40001 + n
        a.append(hubble(WEB, API, t, sport=sport, dport=8080, event="trace-from"))
        b.append(hubble(WEB, API, t + 0.001, sport=sport, dport=8080, event="trace-to"))
        b.append(hubble(API, WEB, t + 0.002, sport=8080, dport=sport, event="trace-from", reply=True))
        a.append(hubble(API, WEB, t + 0.003, sport=8080, dport=sport, event="trace-to",
                        reply=None if n == 1 else True))  # n=1: is_reply absent, a reply by its reverse
    a.append(hubble(WEB, API, 11.0, sport=40001, dport=8080, event="trace-from"))  # retransmission
    # verdicts only: web → db:5432 denied at ingress, SYN retransmitted 1 s and 3 s later
    for t in (40.0, 41.0, 43.0):
        b.append(hubble(WEB, DB, t, sport=41001, dport=5432, event="deny-ingress"))
        b.append(hubble(WEB, DB, t + 0.001, sport=41001, dport=5432, event="drop-ingress"))
    # mixed: internet clients → web:443, verdict and trace
    for sport, t in ((50001, 50.0), (50002, 51.0)):
        a.append(hubble(CLIENT, WEB, t, sport=sport, dport=443, event="allow-ingress"))
        a.append(hubble(CLIENT, WEB, t + 0.0001, sport=sport, dport=443, event="trace-to"))
        a.append(hubble(WEB, CLIENT, t + 0.01, sport=443, dport=sport, event="trace-from", reply=True))
    a.append(hubble(OTHER_CLIENT, WEB, 55.0, sport=50003, dport=443, event="trace-to"))
    # DNS, traces only
    a.append(hubble(WEB, COREDNS, 60.0, sport=53001, dport=53, proto="UDP", event="trace-from"))
    a.append(hubble(WEB, COREDNS, 60.0005, sport=53001, dport=53, proto="UDP", event="trace-to"))
    a.append(hubble(COREDNS, WEB, 60.001, sport=53, dport=53001, proto="UDP", event="trace-from", reply=True))
    # a pod known by identity only
    b.append(hubble(REMOTE_POD, API, 70.0, sport=42001, dport=8080, event="trace-to", src_endpoint=REMOTE))
    # ICMP echo and its reply (is_reply absent)
    a.append(hubble(WEB, API, 80.0, sport=0, dport=8, proto="ICMPv4", event="trace-from"))
    b.append(hubble(API, WEB, 80.001, sport=0, dport=0, proto="ICMPv4", event="trace-from", reply=None))
    # the first 5-tuple again, two minutes later: a new connection
    a.append(hubble(WEB, API, 130.0, sport=40001, dport=8080, event="trace-from"))
    b.append(hubble(WEB, API, 130.001, sport=40001, dport=8080, event="trace-to"))
    a.sort(key=lambda line: json.loads(line)["time"])
    b.sort(key=lambda line: json.loads(line)["time"])
    return [write_lines(tmp_path / "node-a.jsonl", a), write_lines(tmp_path / "node-b.jsonl", b)]


def seen(seconds: float) -> str:
    """RFC 3339 as whatif writes it: the fraction without trailing zeros."""
    text = stamp(seconds)
    head, _, frac = text[:-1].partition(".")
    frac = frac.rstrip("0")
    return f"{head}.{frac}Z" if frac else f"{head}Z"


def row(src: str, dst: str, port: str, proto: str, n: int, first: float, last: float, **rest: str) -> dict[str, Any]:
    def ns(name: str) -> str:
        return name.split("/")[0] if "/" in name else ""

    return {"source": src, "source_namespace": ns(src), "destination": dst, "destination_namespace": ns(dst),
            "destination_port": port, "protocol": proto, "connections": n, "first_seen": seen(first),
            "last_seen": seen(last), **rest}


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(["whatif", *argv, "--json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out)


def test_breaks_opens_and_not_evaluated_from_a_recorded_day(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, result = run_json(capsys, "--format", "hubble", "--policies", PROPOSED, *recorded_day(tmp_path))
    assert code == 1
    assert result == {
        "breaks": [
            row("shop/web", "shop/api", "8080", "TCP", 4, 10.0, 130.001, side="ingress", policy="shop/api-ingress"),
            row("shop/web", "shop/api", "", "ICMPv4", 1, 80.0, 80.0, side="ingress", policy="shop/api-ingress"),
            row("world", "shop/web", "443", "TCP", 1, 55.0, 55.0, side="ingress", policy="shop/web-ingress"),
        ],
        "opens": [
            row("shop/web", "shop/db", "5432", "TCP", 1, 40.0, 43.001, side="ingress", policy="shop/db-ingress"),
        ],
        "not_evaluated": [
            row("unknown", "shop/api", "8080", "TCP", 1, 70.0, 70.0, reason="no-labels"),
        ],
    }
    for rows in result.values():
        for r in rows:
            expected = {"source", "source_namespace", "destination", "destination_namespace", "destination_port",
                        "protocol", "connections", "first_seen", "last_seen"}
            assert set(r) == expected | ({"reason"} if "reason" in r else {"side", "policy"})


def test_the_summary_counts_every_connection_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["whatif", "--format", "hubble", "--policies", PROPOSED, *recorded_day(tmp_path)]) == 1
    out = capsys.readouterr()
    # 4 web→api, 1 ICMP, 1 web→db, 3 from the internet, 1 DNS, 1 remote
    assert "11 connections: 6 break, 1 open, 1 not evaluated, 3 unchanged" in out.out
    assert "Breaks: allowed today, denied by the proposal" in out.out
    assert "10 replies skipped" in out.err  # 6 of web → api, 2 to the internet, DNS, ICMP


def test_one_file_in_time_order_gives_the_same_result(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = recorded_day(tmp_path)
    _, separate = run_json(capsys, "--format", "hubble", "--policies", PROPOSED, *files)
    lines = [line for f in files for line in Path(f).read_bytes().splitlines()]
    lines.sort(key=lambda line: json.loads(line)["time"])
    merged = write_lines(tmp_path / "all.jsonl", lines)
    _, together = run_json(capsys, "--format", "hubble", "--policies", PROPOSED, merged)
    assert together == separate


def test_a_shorter_window_splits_retransmissions_into_connections(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    _, result = run_json(capsys, "--format", "hubble", "--policies", PROPOSED, "--connection-window", "0.5",
                         *recorded_day(tmp_path))
    web_api = next(r for r in result["breaks"] if r["protocol"] == "TCP" and r["destination"] == "shop/api")
    assert web_api["connections"] == 5  # the retransmission 1 s later is now a connection of its own
    assert result["opens"][0]["connections"] == 3  # the SYN and both retransmissions


def test_baseline_decides_today_instead_of_the_recorded_verdicts(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    baseline = tmp_path / "current.yaml"
    baseline.write_text("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
                        "metadata: {name: deny-db, namespace: shop}\n"
                        "spec: {podSelector: {matchLabels: {app: db}}, policyTypes: [Ingress]}\n")
    code, result = run_json(capsys, "--format", "hubble", "--policies", PROPOSED, "--baseline", str(baseline),
                            *recorded_day(tmp_path))
    assert code == 1
    assert [(r["source"], r["destination"], r["protocol"], r["connections"]) for r in result["breaks"]] == [
        ("shop/web", "shop/api", "TCP", 4), ("shop/web", "shop/api", "ICMPv4", 1), ("world", "shop/web", "TCP", 1)]
    # the baseline denies web → db at db's ingress, the proposal allows it
    assert result["opens"] == [
        row("shop/web", "shop/db", "5432", "TCP", 1, 40.0, 43.001, side="ingress", policy="shop/db-ingress")]


def test_egress_is_named_first_when_both_ends_deny(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policies = tmp_path / "p.yaml"
    policies.write_text(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny-all, namespace: shop}\n"
        "spec: {podSelector: {}, policyTypes: [Ingress, Egress]}\n---\n"
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: web, namespace: shop}\n"
        "spec: {podSelector: {matchLabels: {app: web}}, policyTypes: [Egress]}\n")
    flows = write_lines(tmp_path / "f.jsonl", [hubble(WEB, API, 1.0, sport=40001, dport=8080)])
    code, result = run_json(capsys, "--format", "hubble", "--policies", str(policies), flows)
    assert code == 1
    # web is isolated by both; the more specific policy is named (as the exporter names drops)
    assert [(r["side"], r["policy"]) for r in result["breaks"]] == [("egress", "shop/web")]


def test_nothing_breaks_exit_0_with_markdown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    allow = tmp_path / "allow.yaml"
    allow.write_text("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: all, namespace: shop}\n"
                     "spec: {podSelector: {}, ingress: [{}], egress: [{}]}\n")
    code = main(["whatif", "--format", "hubble", "--policies", str(allow), "--markdown", *recorded_day(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("### NetworkPolicy what-if: **breaks nothing**")
    assert "#### Opens: denied today, allowed by the proposal" in out
    assert "| `shop/web` | `shop/db` | `TCP/5432` | 1 | ingress | shop/all |" in out
    assert "| `unknown` | `shop/api` | `TCP/8080` | 1 | no-labels |" in out


def test_calico_flow_logs_count_each_connection_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = [
        calico(WEB, API, reporter="src", action="allow", started=5, port=8080),
        calico(WEB, API, reporter="dst", action="allow", started=5, port=8080),
        calico(WEB, DB, reporter="src", action="allow", started=3, port=5432),
        calico(WEB, DB, reporter="dst", action="deny", started=3, port=5432),
        calico(CLIENT, WEB, reporter="dst", action="allow", started=7, port=443),
        calico(WEB, API, reporter="dst", action="allow", started=2, port=8080, labels=False),
        calico(WEB, API, reporter="src", action="allow", started=2, port=8080, start=3600),
        calico(WEB, API, reporter="dst", action="allow", started=2, port=8080, start=3600),
    ]
    code, result = run_json(capsys, "--format", "calico", "--policies", PROPOSED,
                            write_lines(tmp_path / "flows.log", lines))
    assert code == 1
    assert [(r["source"], r["destination"], r["connections"], r["side"], r["policy"]) for r in result["breaks"]] == [
        ("shop/web", "shop/api", 7, "ingress", "shop/api-ingress")]
    assert [(r["source"], r["destination"], r["connections"], r["side"]) for r in result["opens"]] == [
        ("shop/web", "shop/db", 3, "ingress")]
    assert [(r["connections"], r["reason"]) for r in result["not_evaluated"]] == [(2, "no-labels")]
    assert result["breaks"][0]["first_seen"] == seen(0) and result["breaks"][0]["last_seen"] == seen(3900)


def test_calico_world_without_address_is_not_evaluated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = json.loads(calico(CLIENT, WEB, reporter="dst", action="allow", started=4, port=443))
    line["source_ip"] = None  # aggregated: the address is gone
    flows = write_lines(tmp_path / "flows.log", [json.dumps(line).encode()])
    code, result = run_json(capsys, "--format", "calico", "--policies", PROPOSED, flows)
    assert code == 0
    assert [(r["source"], r["connections"], r["reason"]) for r in result["not_evaluated"]] == [("world", 4, "no-ip")]


def test_goldmane_flows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = [goldmane(WEB, API, reporter=1, action=1, started=4, port=8080),
             goldmane(WEB, API, reporter=2, action=1, started=4, port=8080),
             goldmane(WEB, DB, reporter=1, action=1, started=2, port=5432),
             goldmane(WEB, DB, reporter=2, action=2, started=2, port=5432)]
    code, result = run_json(capsys, "--format", "goldmane", "--policies", PROPOSED,
                            write_lines(tmp_path / "goldmane.ndjson", lines))
    assert code == 1
    assert [(r["destination"], r["connections"]) for r in result["breaks"]] == [("shop/api", 4)]
    assert [(r["destination"], r["connections"], r["side"]) for r in result["opens"]] == [("shop/db", 2, "ingress")]


def test_errors_exit_2_and_name_the_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flows = recorded_day(tmp_path)
    assert main(["whatif", "--format", "hubble", "--policies", PROPOSED, str(tmp_path / "missing.jsonl")]) == 2
    assert "missing.jsonl" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: x, namespace: shop}\n"
                   "spec:\n  podSelector: {}\n  ingress:\n  - ports: [{port: 70000}]\n")
    assert main(["whatif", "--format", "hubble", "--policies", str(bad), *flows]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml:7" in err and "spec.ingress[0].ports[0].port" in err
    assert main(["whatif", "--format", "hubble", "--policies", PROPOSED, "--connection-window", "0", *flows]) == 2
    assert main(["whatif", "--format", "hubble", "--policies", "-", "-"]) == 2
    assert "only one input" in capsys.readouterr().err


def test_invalid_lines_are_reported_and_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = hubble(WEB, API, 1.0, sport=40001, dport=8080)
    bad_time = good.replace(b'"time":"2026', b'"time":"20x6', 1)
    flows = write_lines(tmp_path / "f.jsonl", [b"{not json", bad_time, good])
    code = main(["whatif", "--format", "hubble", "--policies", PROPOSED, "--json", flows])
    captured = capsys.readouterr()
    assert code == 1 and json.loads(captured.out)["breaks"][0]["connections"] == 1
    assert f"{flows}:1: invalid line: not valid JSON" in captured.err
    assert f"{flows}:2: invalid line: malformed timestamp" in captured.err and "$.flow.time" in captured.err
    assert "2 invalid" in captured.err


def test_events_without_time_still_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = [hubble(WEB, API, 0, sport=40001, dport=8080, with_time=False),
             hubble(WEB, API, 0, sport=40001, dport=8080, event="trace-to", with_time=False),
             hubble(WEB, API, 0, sport=40002, dport=8080, with_time=False)]
    _, result = run_json(capsys, "--format", "hubble", "--policies", PROPOSED, write_lines(tmp_path / "f", lines))
    assert [(r["connections"], r["first_seen"], r["last_seen"]) for r in result["breaks"]] == [(2, None, None)]


def test_tracking_memory_is_bounded_by_the_window() -> None:
    """A long stream of short connections: only the last window's connections are held."""
    done: list[Connection] = []
    tracker = HubbleTracker(60.0, done.append)
    peak = 0
    for i in range(30_000):  # 100 new connections a second for 300 s
        t = i / 100
        event = decode_hubble(hubble(WEB, API, t, sport=1024 + i % 60000, dport=8080))
        assert event is not None
        tracker.add(event)
        peak = max(peak, len(tracker.active))
    tracker.finish()
    assert len(done) == 30_000 and tracker.connections == 30_000
    assert peak <= 61 * 100 + 2  # the window plus one second: expiry sweeps once per second of stream time


def test_policies_from_stdin(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO((DATA / "proposed.yaml").read_bytes())))
    code, result = run_json(capsys, "--format", "hubble", "--policies", "-", *recorded_day(tmp_path))
    assert code == 1 and [r["connections"] for r in result["breaks"]] == [4, 1, 1]
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"kind: NetworkPolicy\nmetadata: {name: x}\n")))
    assert main(["whatif", "--format", "hubble", "--policies", "-", *recorded_day(tmp_path)]) == 2
    assert "<stdin>" in capsys.readouterr().err


def test_a_group_splits_by_side_and_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Connections of one (source, destination, port) decided at different ends or by different policies."""
    canary = Pod("shop", "web", "web-5d8f7c9b6d-zz9qq", "10.0.1.12", ("app=web", "track=canary"), "node-a")
    policies = tmp_path / "p.yaml"
    policies.write_text(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: canary-egress, namespace: shop}\n"
        "spec: {podSelector: {matchLabels: {track: canary}}, policyTypes: [Egress]}\n---\n"
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: api-ingress, namespace: shop}\n"
        "spec: {podSelector: {matchLabels: {app: api}}, ingress: [{from: [{podSelector: {matchLabels: "
        "{track: canary}}}]}]}\n")
    lines = [hubble(WEB, API, 1.0, sport=40001, dport=8080), hubble(WEB, API, 2.0, sport=40002, dport=8080),
             hubble(canary, API, 3.0, sport=40003, dport=8080)]
    code, result = run_json(capsys, "--format", "hubble", "--policies", str(policies),
                            write_lines(tmp_path / "f.jsonl", lines))
    assert code == 1
    assert [(r["source"], r["connections"], r["side"], r["policy"]) for r in result["breaks"]] == [
        ("shop/web", 2, "ingress", "shop/api-ingress"), ("shop/web", 1, "egress", "shop/canary-egress")]


def test_lines_of_a_tracked_connection_keep_their_time() -> None:
    """The raw-bytes path for lines of known connections reads the same 5-tuple and time as a full decode."""
    from exporter.whatif.events import Touch
    from exporter.whatif.hubble_events import hubble_decoder

    done: list[Connection] = []
    tracker = HubbleTracker(60.0, done.append)
    decode = hubble_decoder(tracker.active, tracker.window_ns)
    first = decode(hubble(WEB, API, 130.0, sport=40001, dport=8080, event="trace-from"))
    later = hubble(WEB, API, 130.25, sport=40001, dport=8080, event="trace-to")  # its time after the endpoints
    tracker.add(first)
    touch = decode(later)
    full = decode_hubble(later)
    assert isinstance(touch, Touch) and full is not None
    assert touch == (full.five_tuple, full.time_ns) and touch.time_ns > 0
    tracker.add(touch)
    tracker.finish()
    assert [(c.first_ns, c.last_ns) for c in done] == [(first.time_ns, full.time_ns)]


def _compact(at: str, sport: int, *, uuid: bool = True, ethernet: bool = True, verdict: str = "FORWARDED",
             reply: bool = False) -> bytes:
    """A trace event in Cilium's field order (time, uuid, verdict, ethernet, IP, l4 ...), compact protojson."""
    flow: dict[str, Any] = {"time": at}
    if uuid:
        flow["uuid"] = "0d0a3c7e-6a3f-4f0e-9d53-1b1f4f3c2a10"
    flow["verdict"] = verdict
    if ethernet:
        flow["ethernet"] = {"source": "d2:d9:76:de:f4:90", "destination": "6e:3c:ce:d3:9e:a6"}
    flow.update({
        "IP": {"source": WEB.ip, "destination": API.ip, "ipVersion": "IPv4"},
        "l4": {"TCP": {"source_port": sport, "destination_port": 8080, "flags": {"ACK": True}}},
        "source": WEB.endpoint(), "destination": API.endpoint(), "Type": "L3_L4", "node_name": "node-a",
        "event_type": {"type": 4, "sub_type": 3}, "traffic_direction": "EGRESS", "is_reply": reply,
        "trace_observation_point": "TO_STACK"})
    return json.dumps({"flow": flow, "node_name": "node-a", "time": at}, separators=(",", ":")).encode()


def test_compact_lines_of_a_tracked_connection_read_as_a_full_decode_does() -> None:
    """Lines in Cilium's own field order take the one-match path: the same 5-tuple and time as decoding them."""
    from exporter.whatif.events import Touch
    from exporter.whatif.hubble_events import _COMPACT, hubble_decoder

    tracker = HubbleTracker(60.0, lambda conn: None)
    decode = hubble_decoder(tracker.active, tracker.window_ns)
    first = decode(_compact("2026-12-04T16:00:01.5Z", 40001))
    assert first is not None and type(first) is not Touch
    tracker.add(first)
    later = [_compact("2026-12-04T16:00:01.750000001Z", 40001), _compact("2026-12-04T16:00:02.25Z", 40001, uuid=False),
             _compact("2026-12-04T16:00:03.000000000Z", 40001, ethernet=False),
             _compact("2026-12-04T16:00:59.1Z", 40001, uuid=False, ethernet=False)]
    for line in later:
        assert _COMPACT.match(line) is not None  # the path under test
        touch, full = decode(line), decode_hubble(line)
        assert isinstance(touch, Touch) and full is not None
        assert touch == (full.five_tuple, full.time_ns)
        tracker.add(touch)
    # past the window, another source port, a drop, a reply, a time with an offset: not touches
    assert type(decode(_compact("2026-12-04T16:02:00.1Z", 40001))) is not Touch
    assert type(decode(_compact("2026-12-04T16:00:59.2Z", 40002))) is not Touch
    assert type(decode(_compact("2026-12-04T16:00:59.3Z", 40001, verdict="DROPPED"))) is not Touch
    assert decode(_compact("2026-12-04T16:00:59.4Z", 40001, reply=True)).is_reply  # type: ignore[union-attr]
    offset = decode(_compact("2026-12-04T17:00:59.5+01:00", 40001))
    assert isinstance(offset, Touch) and offset.time_ns == decode_hubble(
        _compact("2026-12-04T16:00:59.5Z", 40001)).time_ns  # type: ignore[union-attr]


def test_one_file_replays_as_the_merge_of_files_does(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One file: the decoder applies the lines of live connections to the tracker itself; several files are
    merged and pass Touch events. Both give the same report."""
    lines = [line for path in recorded_day(tmp_path) for line in Path(path).read_bytes().splitlines()]
    # lines 40 s apart: one connection while each extends it (the window is 60 s), then a reply
    lines += [_compact(stamp(s + 0.25 * n), 40100 + n) for n in range(3) for s in range(0, 200, 40)]
    lines += [_compact(stamp(200.5), 40100, reply=True)]
    lines.sort(key=lambda line: json.loads(line)["time"])
    one = write_lines(tmp_path / "one.jsonl", lines)
    empty = write_lines(tmp_path / "empty.jsonl", [])
    code, alone = run_json(capsys, "--format", "hubble", "--policies", PROPOSED, one)
    merged_code, merged = run_json(capsys, "--format", "hubble", "--policies", PROPOSED, one, empty)
    assert (code, alone) == (merged_code, merged)
    # the recorded day's 4 web → api:8080 connections and one for each compact source port
    assert [r["connections"] for r in alone["breaks"] if r["destination_port"] == "8080"] == [4 + 3]


def test_times_with_an_offset_do_not_shift_utc_times_of_the_same_clock_minute() -> None:
    """The raw-bytes time path caches a minute: only a UTC one, and the full parse decides the rest."""
    from exporter.timeparse import parse_rfc3339_ns
    from exporter.whatif.hubble_events import hubble_decoder

    done: list[Connection] = []
    tracker = HubbleTracker(3600.0, done.append)
    decode = hubble_decoder(tracker.active, tracker.window_ns)
    base = json.loads(hubble(WEB, API, 130.0, sport=40001, dport=8080, event="trace-from"))
    times = ["2024-05-01T12:00:05.000000000+02:00", "2024-05-01T12:00:05.500000000Z",
             "2024-05-01T12:00:07.250Z", "2024-05-01T12:00:07.500000000+02:00", "2024-05-01T12:00:07.750000001Z",
             "2024-05-01T12:00:60.000000000Z", "2024-05-01T12:01:00Z"]
    seen = []
    for at in times:
        obj = json.loads(json.dumps(base))
        obj["time"] = obj["flow"]["time"] = at
        event = decode(json.dumps(obj, separators=(",", ":")).encode())
        if event is not None:
            seen.append(event.time_ns)
            tracker.add(event)
    parsed = [parse_rfc3339_ns(at) for at in times]
    assert seen == parsed and len(seen) == len(times)


def test_calico_traffic_of_older_connections_is_listed_with_zero(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    lines = [calico(WEB, API, reporter="src", action="allow", started=0, port=8080),
             calico(WEB, API, reporter="dst", action="allow", started=0, port=8080),
             calico(WEB, DB, reporter="dst", action="deny", started=0, port=5432)]
    code, result = run_json(capsys, "--format", "calico", "--policies", PROPOSED,
                            write_lines(tmp_path / "flows.log", lines))
    assert code == 1
    assert [(r["destination"], r["connections"], r["side"]) for r in result["breaks"]] == [("shop/api", 0, "ingress")]
    assert [(r["destination"], r["connections"], r["side"]) for r in result["opens"]] == [("shop/db", 0, "ingress")]


def test_flows_to_a_service_address_before_translation_are_not_connections() -> None:
    """kube-proxy setups trace the packet leaving the pod with the ClusterIP: the pod behind it is not known."""
    vip = World("10.96.0.42")
    line = json.loads(hubble(WEB, vip, 1.0, sport=40001, dport=8080))
    line["flow"]["destination_service"] = {"name": "api", "namespace": "shop"}
    assert decode_hubble(json.dumps(line).encode()) is None
    translated = json.loads(hubble(WEB, API, 1.0, sport=40001, dport=8080, event="trace-to"))
    translated["flow"]["destination_service"] = {"name": "api", "namespace": "shop"}
    event = decode_hubble(json.dumps(translated).encode())
    assert event is not None and event.dst.name == "shop/api"


def test_a_policy_kind_the_engine_does_not_read_is_warned_about(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    policies = tmp_path / "p.yaml"
    policies.write_text((DATA / "proposed.yaml").read_text() + "\n---\napiVersion: v1\nkind: ConfigMap\n"
                        "metadata: {name: x, namespace: shop}\n---\napiVersion: example.io/v1\n"
                        "kind: ExampleNetworkPolicy\nmetadata: {name: y, namespace: shop}\n")
    assert main(["whatif", "--format", "hubble", "--policies", str(policies), *recorded_day(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "warning: --policies: not policies, ignored: 1 ConfigMap" in err
    assert "(document 5 shop/y): kind ExampleNetworkPolicy (example.io/v1) is not evaluated" in err
    assert err.count("the connections those policies decide are evaluated without them") == 1


def test_calico_peers_outside_the_pods(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A NetworkSet with its address is matched by ipBlocks like the internet; the node is not evaluated."""
    netset = json.loads(calico(CLIENT, WEB, reporter="dst", action="allow", started=2, port=443))
    netset.update(source_type="ns", source_name="partners", source_name_aggr="partners", source_namespace="shop")
    host = json.loads(calico(CLIENT, WEB, reporter="dst", action="allow", started=1, port=443))
    host.update(source_type="hep", source_ip="10.0.0.3", source_name_aggr="node-a")
    flows = write_lines(tmp_path / "flows.log", [json.dumps(netset).encode(), json.dumps(host).encode()])
    code, result = run_json(capsys, "--format", "calico", "--policies", PROPOSED, flows)
    assert code == 0 and result["breaks"] == []  # 203.0.113.9 is in web-ingress's ipBlock
    assert [(r["source"], r["reason"]) for r in result["not_evaluated"]] == [("host", "reserved-peer")]


def test_named_ports_and_traffic_outside_the_cluster_are_not_evaluated(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    policies = tmp_path / "p.yaml"
    policies.write_text("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
                        "metadata: {name: api-ingress, namespace: shop}\n"
                        "spec: {podSelector: {matchLabels: {app: api}}, ingress: [{ports: [{port: http}]}]}\n")
    lines = [hubble(WEB, API, 1.0, sport=40001, dport=8080), hubble(CLIENT, OTHER_CLIENT, 2.0, sport=40002, dport=80)]
    code, result = run_json(capsys, "--format", "hubble", "--policies", str(policies),
                            write_lines(tmp_path / "f.jsonl", lines))
    assert code == 0 and result["breaks"] == []
    assert [(r["source"], r["destination"], r["reason"]) for r in result["not_evaluated"]] == [
        ("shop/web", "shop/api", "named-port"), ("world", "world", "outside-cluster")]


def test_flows_from_stdin_and_gzip(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import gzip
    import io

    files = recorded_day(tmp_path)
    lines = sorted((line for f in files for line in Path(f).read_bytes().splitlines()),
                   key=lambda line: json.loads(line)["time"])
    merged = b"\n".join(lines) + b"\n"
    _, from_file = run_json(capsys, "--format", "hubble", "--policies", PROPOSED, *files)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(merged)))
    _, from_stdin = run_json(capsys, "--format", "hubble", "--policies", PROPOSED, "-")
    packed = tmp_path / "all.jsonl.gz"
    packed.write_bytes(gzip.compress(merged))
    _, from_gzip = run_json(capsys, "--format", "hubble", "--policies", PROPOSED, str(packed))
    assert from_stdin == from_file == from_gzip
