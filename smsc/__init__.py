"""fraudgate: smsc."""
