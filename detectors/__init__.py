"""Driftline detectors: pure statistics (numpy, scipy) that compare recent windows of decisions
with a baseline. Imports nothing from the agent or collector."""
