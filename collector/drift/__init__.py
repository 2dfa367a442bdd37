"""Layer 3: the detector worker. Features, reference files, baselines and the loop that turns
windows of stored decisions into drift verdicts (the statistics live in ``detectors/``)."""
