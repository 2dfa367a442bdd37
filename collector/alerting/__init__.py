"""Layer 3: alerts. The alerting file, matchers, the routing tree, grouping, silences and
muting, receivers, the outbox, and the router process that reads verdicts off the log."""
