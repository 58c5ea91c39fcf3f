"""`digest serve`: the scheduler wiring, leader election and the long-running service."""
