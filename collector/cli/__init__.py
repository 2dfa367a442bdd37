"""The ``driftline`` command line: one module per command group (``main`` holds the top level).
Empty of imports so that ``driftline agent`` starts without loading the collector."""
