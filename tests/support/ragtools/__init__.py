"""Helpers for retrieval tests and benchmarks."""
