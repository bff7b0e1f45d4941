"""Real services for the tests (PostgreSQL, mosquitto): see tests/fixtures_services.py."""

pytest_plugins = ["fixtures_services", "fixtures_db"]
