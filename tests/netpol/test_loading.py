"""Reading policies: multi-document files, Lists, folders, kustomizations, and located errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from exporter.netpol.errors import InputError
from exporter.netpol.loading import load_policies

NP = (
    "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
    "metadata: {{name: {name}, namespace: app}}\nspec: {{podSelector: {{}}}}\n"
)


def test_multi_document_files_lists_and_other_kinds(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        NP.format(name="one")
        + "---\napiVersion: v1\nkind: Service\nmetadata: {name: svc}\n---\n"
        + "apiVersion: v1\nkind: List\nitems:\n- "
        + NP.format(name="two").replace("\n", "\n  ").rstrip()
        + "\n"
    )
    loaded = load_policies([tmp_path / "a.yaml"])
    assert [lp.policy.key for lp in loaded.policies] == ["app/one", "app/two"]
    assert loaded.notes == [f"{tmp_path / 'a.yaml'}:6 (document 2 svc): skipped kind Service"]
    assert loaded.policies[1].document.label == "document 3, items[0]"


def test_folders_are_read_recursively_in_order(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.yml").write_text(NP.format(name="b"))
    (tmp_path / "sub" / "a.yaml").write_text(NP.format(name="a"))
    (tmp_path / "notes.txt").write_text("not yaml: [")
    assert [lp.policy.name for lp in load_policies([tmp_path]).policies] == ["b", "a"]


def test_plain_kustomization_is_read_without_kubectl(tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    (base / "p.yaml").write_text(NP.format(name="p"))
    (base / "kustomization.yaml").write_text("resources:\n- p.yaml\n")
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "q.yaml").write_text(NP.format(name="q"))
    (overlay / "kustomization.yaml").write_text("resources:\n- ../base\n- q.yaml\n")
    loaded = load_policies([overlay])
    assert [lp.policy.name for lp in loaded.policies] == ["p", "q"]
    assert loaded.policies[0].document.source == str(base / "p.yaml")


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_other_kustomizations_are_rendered_by_kubectl(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(NP.format(name="p"))
    (tmp_path / "kustomization.yaml").write_text("namePrefix: prod-\nresources:\n- p.yaml\n")
    loaded = load_policies([tmp_path])
    assert [lp.policy.name for lp in loaded.policies] == ["prod-p"]
    assert loaded.policies[0].document.source == f"kustomize:{tmp_path}"


def test_errors_name_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: 1\nb: [2\n")
    with pytest.raises(InputError, match=r"bad\.yaml:3: invalid YAML"):
        load_policies([bad])
    dup = tmp_path / "dup.yaml"
    dup.write_text(NP.format(name="x") + "---\n" + NP.format(name="x"))
    with pytest.raises(InputError, match=r"dup\.yaml:6 .*duplicate NetworkPolicy app/x \(first at .*dup\.yaml:1"):
        load_policies([dup])
    with pytest.raises(InputError, match="no such file"):
        load_policies([tmp_path / "missing.yaml"])
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just text\n")
    with pytest.raises(InputError, match="expected a Kubernetes object"):
        load_policies([scalar])
