"""Loading from files: errors name the file, the line of the field at fault, the field and the column."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.netpol.calico.loader import PolicySetError, load_documents
from exporter.netpol.loading import documents

TEXT = """\
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: security}
spec: {order: 100}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: p, namespace: shop}
spec:
  tier: security
  ingress:
  - action: Allow
    source:
      selector: app == 'web' && env = 'prod'
"""


def test_errors_name_file_line_field_and_column(tmp_path: Path) -> None:
    path = tmp_path / "policies.yaml"
    path.write_text(TEXT)
    with pytest.raises(PolicySetError) as info:
        load_documents(documents([path]), cni="calico")
    assert info.value.problems == [
        f"{path}:14 (document 2 shop/p): spec.ingress[0].source.selector: "
        "column 21: expected '==' in \"app == 'web' && env = 'prod'\""
    ]


def test_loads_from_files(tmp_path: Path) -> None:
    path = tmp_path / "policies.yaml"
    path.write_text(TEXT.replace("env = 'prod'", "env == 'prod'"))
    policy_set = load_documents(documents([path]), cni="calico")
    assert [p.label for p in policy_set.policies] == ["shop/security.p"]
    assert policy_set.policies[0].source == f"{path}:6 (document 2 shop/p)"
    assert policy_set.tier("security").order == 100


def test_lists_and_documents_that_are_not_mappings() -> None:
    from exporter.netpol.calico import load_policies

    items = {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy", "metadata": {"name": "g"},
         "spec": {"ingress": [{"action": "Deny", "source": {"selector": "a in {'x'"}}]}},
    ]}
    with pytest.raises(PolicySetError) as info:
        load_policies([items, ["not", "a", "mapping"]], names=["all.yaml"])
    assert info.value.problems == [
        "all.yaml, items[0] (GlobalNetworkPolicy g): spec.ingress[0].source.selector: "
        "column 10: expected ',' or '}' in a set, found the end of the selector in \"a in {'x'\"",
        "document 2: expected a mapping, got list",
    ]
