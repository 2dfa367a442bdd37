"""Layer 1: the database, its models and migrations, the ledger and the read models projected
from it, and the queries and search that read them."""
