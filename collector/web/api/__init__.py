"""The auditor's HTTP API (FastAPI): decision trails and health."""
