"""fraudgate: gateway."""
