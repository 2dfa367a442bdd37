"""Driftline: the agent SDK (``driftline.agent``), the collector (``driftline.collector``) and the
drift detectors (``driftline.detectors``), installed under one name so that none clashes with an
application's own modules. The repository keeps them as top-level folders; this package links
them (``driftline/agent`` is a link to ``agent/``), and the wheel holds them here only."""
