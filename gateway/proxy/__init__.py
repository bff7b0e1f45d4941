"""The A2P SMPP proxy (docs/proxy.md): aggregators bind to fraudgate as to an SMSC; every
submit is inspected, recorded, and forwarded to the operator's SMSC through a durable journal;
receipts and MO messages come back to the right aggregator with the ids it knows."""
