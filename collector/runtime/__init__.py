"""Layer 6: running the system. The services built once for ``up``, ``demo`` and the separate
commands, the embedded broker, the demo and its simulated traffic."""
