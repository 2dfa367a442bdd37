"""The web page for on-call engineers and auditors: overview, drift, alerts and audit, rendered
on the server from templates, with plots drawn as inline SVG."""
