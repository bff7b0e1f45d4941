"""Retention of personal data (R7, R8; docs/retention.md).

`settings` ([retention], light: read by gateway.config) and `purge` (the erasure on the store,
run by the daemon's housekeeping and by `fraudgate retention run`). Kept apart so that loading
the configuration does not import SQLAlchemy.
"""
