"""Benchmarks that print figures against baselines measured in the same run (not tests)."""
