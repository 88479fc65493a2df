"""The series cap holds for every label: per-policy overflow series are capped too (CONTRACT "Cardinality")."""

from __future__ import annotations

import aiohttp

from exporter.config import Config
from exporter.model import FAMILY_LABELS, Family
from exporter.pipeline import Pipeline
from exporter.sources.goldmane_push import GoldmanePushSource
from exporter.store import OVERFLOW, SeriesStore
from tests.sources.goldmane_flows import DENY, K8S_NP, goldmane_flow, hit
from tests.sources.helpers import Running, total, until

LABELS = FAMILY_LABELS[Family.DROPPED]


def key(policy: str, src: str) -> tuple[str, ...]:
    return (policy, "ingress", src, "ns", "ns/web", "ns", "80", "TCP", "POLICY_DENIED")


def test_distinct_policies_beyond_both_caps_fold_into_one_series_with_exact_totals() -> None:
    store = SeriesStore("x", "h", LABELS, max_series=100, max_overflow_series=50)
    for i in range(10_000):
        store.add(key(f"ns/policy-{i}", f"ns/src-{i}"), 3, now=0)
    assert len(store) == 100 + 50 + 1
    assert sum(entry[0] for entry in store.series.values()) == 30_000
    everything = store.series[(OVERFLOW,) * len(LABELS)]
    assert everything[0] == 3 * (10_000 - 150)
    per_policy = [k for k in store.series if k[0] != OVERFLOW and k[1] == OVERFLOW]
    assert len(per_policy) == 50
    # an existing per-policy overflow series keeps counting in place
    store.add(key("ns/policy-120", "ns/another"), 1, now=0)
    assert store.series[("ns/policy-120", *[OVERFLOW] * 8)][0] == 4


def test_expired_overflow_series_free_their_place() -> None:
    store = SeriesStore("x", "h", LABELS, max_series=1, max_overflow_series=1)
    store.add(key("ns/a", "s0"), 1, now=0)
    store.add(key("ns/b", "s1"), 1, now=0)  # per-policy overflow series of ns/b
    store.add(key("ns/c", "s2"), 1, now=0)  # overflow cap reached: all-__overflow__
    assert ("ns/c", *[OVERFLOW] * 8) not in store.series and len(store) == 3
    assert store.expire(now=100, idle_seconds=10) == 3
    store.add(key("ns/d", "s3"), 1, now=100)
    store.add(key("ns/e", "s4"), 1, now=100)
    assert ("ns/e", *[OVERFLOW] * 8) in store.series


async def test_distinct_policy_names_through_the_push_port_stay_capped() -> None:
    pipeline = Pipeline(Config.model_validate({"series": {"max_per_family": 100}}))
    source = GoldmanePushSource("calico-goldmane-push:127.0.0.1:0", pipeline, "127.0.0.1", 0)
    flows = 3000
    body = b"\n".join(goldmane_flow(packets_in=2, enforced=[hit(K8S_NP, f"p{i}", "temporal", action=DENY)])
                      for i in range(flows))
    async with Running(source):
        await until(lambda: source.bound_port is not None)
        async with aiohttp.ClientSession() as session, session.post(
                f"http://127.0.0.1:{source.bound_port}/", data=body,
                headers={"Content-Type": "application/x-ndjson"}) as resp:
            assert resp.status == 200
    store = pipeline.stores[Family.DROPPED]
    assert len(store) <= 100 + store.max_overflow_series + 1 < flows
    assert total(pipeline) == 2 * flows
