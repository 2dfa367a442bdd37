"""Layer 3: what auditors rely on. Checkpoints, integrity and row verification, proofs,
exports, erasure, legal holds, access tokens and the housekeeper that runs them on a timer."""
