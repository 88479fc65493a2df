"""Calico policy hits → the contract's policy label value.

Three string syntaxes (felix calc/policy_lookup_cache.go, goldmane/proto/methods.go):
  oldest     idx|tier|name|action                e.g. 0|__PROFILE__|__PROFILE__.kns.kube-system|allow
  3.30-3.31  idx|tier|ns/tier.name|action|rule   e.g. 0|default|ns/knp.default.web|allow|2
  3.32+      idx|tier|kind:ns/name|action|rule   e.g. 0|tier1|np:ns1/tier1.policy1|deny|-1
Rule -1 is the tier's implicit drop, charged to the policy the string names.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final, NamedTuple

PROFILE_TIER: Final = "__PROFILE__"
DEFAULT_TIER: Final = "default"
# 3.32+ kinds. `pro` is a profile (namespace/service-account allow): `default-allow` to us.
KINDS: Final = frozenset({"gnp", "np", "knp", "snp", "sgnp", "sknp", "kcnp", "pro", "kanp", "kbanp", "anp", "banp"})
# Legacy name prefixes that mark a kind rather than belong to the name.
_LEGACY_KIND_PREFIXES: Final = ("knp.default.", "kanp.", "kbanp.")
ACTIONS: Final = frozenset({"allow", "deny", "pass", "log"})


class PolicyHit(NamedTuple):
    order: int  # the string's index field: hits are sorted by it
    action: str  # allow | deny | pass
    label: str  # contract policy value; "" for a profile (caller uses default-allow)
    profile: bool
    staged: bool = False  # a staged policy's hit: it enforced nothing, so it never decides


class PolicyStringError(ValueError):
    pass


def policy_value(tier: str, namespace: str, name: str) -> str:
    """`ns/name` in the default tier, `ns/tier.name` elsewhere (tier never doubled); no namespace: cluster-scoped."""
    if name.startswith("staged:"):
        name = name[7:]
    if tier == DEFAULT_TIER or not tier:
        if name.startswith("default."):
            name = name[8:]
    elif not name.startswith(tier + "."):
        name = f"{tier}.{name}"
    return f"{namespace}/{name}" if namespace else name


@lru_cache(maxsize=16384)
def parse_policy_string(value: str) -> PolicyHit:
    parts = value.split("|")
    if len(parts) not in (4, 5):
        raise PolicyStringError(f"policy string {value!r}: expected 4 or 5 '|'-separated fields")
    index_text, tier, name_field, action = parts[:4]
    try:
        index = int(index_text)
        if len(parts) == 5:
            int(parts[4])
    except ValueError:
        raise PolicyStringError(f"policy string {value!r}: index and rule must be integers") from None
    if action not in ACTIONS:
        raise PolicyStringError(f"policy string {value!r}: unknown action {action!r}")
    if not name_field:
        raise PolicyStringError(f"policy string {value!r}: empty policy name")
    kind, colon, rest = name_field.partition(":")
    if colon and kind in KINDS:
        if kind == "pro":
            return PolicyHit(index, action, "", True)
        namespace, _, name = rest.rpartition("/")
        staged = kind.startswith("s")
        if staged and name.startswith("staged:"):
            name = name[7:]
        return PolicyHit(index, action, policy_value(tier, namespace, name), False, staged)
    if tier == PROFILE_TIER or name_field.startswith(PROFILE_TIER + "."):
        return PolicyHit(index, action, "", True)
    namespace, _, name = name_field.rpartition("/")
    staged = "staged:" in name
    if name.startswith("staged:"):
        name = name[7:]
    for prefix in _LEGACY_KIND_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    # `tier.staged:name` (staged Calico policy, legacy)
    head, dot, tail = name.partition(".")
    if dot and tail.startswith("staged:"):
        name = f"{head}.{tail[7:]}"
    if not name:
        raise PolicyStringError(f"policy string {value!r}: empty policy name")
    return PolicyHit(index, action, policy_value(tier, namespace, name), False, staged)


def deciding_hit(hits: list[PolicyHit], action: str) -> PolicyHit | None:
    """For a deny, the hit with action deny; for an allow, the last `allow` hit (earlier ones are pass).
    Staged hits (which the old `all_policies` list mixes in) never decide."""
    ordered = [h for h in hits if not h.staged]
    if len(ordered) > 1:
        ordered.sort(key=lambda h: h.order)
    if action == "deny":
        return next((h for h in ordered if h.action == "deny"), None)
    allows = [h for h in ordered if h.action == "allow"]
    return allows[-1] if allows else None
