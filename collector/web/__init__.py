"""Layer 5: what auditors see. The HTTP API (``api/``) and the web page (``ui/``)."""
