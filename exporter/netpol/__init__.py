"""NetworkPolicy engine: parse and evaluate `networking.k8s.io/v1` NetworkPolicies offline.

Modules: `labels` (label selectors), `policy` (parsing and API-server validation), `evaluator`
(reachability between endpoints), `connset` (allowed port sets), `attribution` (which policy to
name for a drop), `loading`/`modelfile` (YAML input), `lint`, and the `check`/`lint` commands.
"""
