"""Async sources: they only move bytes into Pipeline.ingest (see base.Source)."""
