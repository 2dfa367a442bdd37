"""Layer 2: reading the event log. The Kafka adapter, the consumer that commits after the
database transaction, and ingest, which stores one batch into the ledger and read models."""
