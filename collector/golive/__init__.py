"""Layer 4: the go-live gate. The thresholds file, the gate that evaluates it, drills and
load tests."""
