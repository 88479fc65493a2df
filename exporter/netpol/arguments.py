"""`--namespace` and `--cni`: the options of every command that reads policy files.

Kept apart from the loaders so that a command's parser is built without importing them (and YAML).
"""

from __future__ import annotations

import argparse

CNI_CHOICES = ("cilium", "calico")


def add_policy_input_arguments(parser: argparse.ArgumentParser) -> None:
    """`--namespace` (as kubectl, policies without one get it) and `--cni` (whose semantics apply)."""
    parser.add_argument("--namespace", "-n", default="default", metavar="NS",
                        help="namespace of policies without metadata.namespace (default: default, as kubectl)")
    parser.add_argument("--cni", choices=CNI_CHOICES, default=None,
                        help="the cluster's CNI, whose semantics evaluate the policies: cilium or calico "
                             "(default: plain Kubernetes semantics; Calico or Cilium kinds in the files "
                             "choose it; mixing them is an error)")
