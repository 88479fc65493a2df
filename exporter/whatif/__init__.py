"""What-if analysis of recorded flows: `whatif` replays connections through proposed NetworkPolicies,
`suggest` writes least-privilege NetworkPolicies from them.

Modules: `sides` (a connection end as the engine sees it), `events` (connection events),
`hubble_events` and `calico_events` (light decoding of Hubble, Calico and Goldmane lines into
them), `reading` (files merged by time), `tracking` (events → connections), `decide` (verdicts
under policies, with reasons when undecidable), `report` (breaks/opens/not-evaluated rows and their
renderings), `suggest` (policies from connections), `inputs` and the two commands.
"""
