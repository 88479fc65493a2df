"""Kubernetes enrichment: watches, the flow enricher, policy info metrics and zero-seeding (docs/kubernetes.md)."""
