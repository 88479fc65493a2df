"""Policy engine: parse and evaluate `networking.k8s.io/v1` NetworkPolicies and Cilium's
CiliumNetworkPolicies / CiliumClusterwideNetworkPolicies offline.

Modules: `labels` (label selectors), `policy` (NetworkPolicy parsing and API-server validation),
`cilium` (the CNP/CCNP model and its L3/L4 semantics), `cilium_parse` (their parsing and
validation), `evaluator` (reachability between endpoints), `connset` (allowed port sets,
NetworkPolicies), `attribution` (which policy to name, for the Kubernetes enrichment), `flowattrib`
(naming from policy files: `--policies`), `loading`/`modelfile` (YAML input), `lint`, and the
`check`/`lint` commands.
"""
