"""fraudgate: gsm_probe."""
