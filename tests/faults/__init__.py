"""The fault scenarios of ``make reliability`` (``python -m tests.faults``): the embedded stack
at a steady load while one part breaks, and what was lost or stored twice. The test suite runs
each at a small scale (``tests/integration/test_reliability.py``)."""
