"""The Osmocom lab: osmo-hlr + osmo-msc on loopback, virtual phones over SGs, provisioning."""
