"""State the gateway nodes share (Redis): gateway/shared/redis_state.py, imported where used
(it pulls in the detectors; the configuration needs only gateway/shared/settings.py)."""
