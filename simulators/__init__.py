"""fraudgate: simulators."""
