"""Driftline collector: consumes the event log into the audit ledger and read models, and
serves them to auditors through the API. Also home of the ``driftline`` command line."""
