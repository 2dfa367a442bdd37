"""Layer 0 of the collector: settings, logs, health and leadership, configuration files,
durations and the producer keys it trusts. Imports nothing else of the collector."""
