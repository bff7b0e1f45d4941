"""The SMS path: what the SMSC hands over is inspected, recorded and answered (`handler`), with
stable ids for redeliveries (`message_ids`), the onward submission and receipts of forward mode
(`delivery`), and the sender a complaint names (`suspect`). docs/inline.md."""
