"""Alerts: their JSON payloads (`payloads`, docs/mqtt.md), the broker connection that publishes
them (`mqtt`) and the outbox dispatcher that delivers what the store recorded, none lost
(`dispatcher`)."""
