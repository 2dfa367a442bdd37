"""API routes, one resource per module."""
