"""Osmocom core-network links: IPA framing, the CTRL protocol (osmo-hlr, osmo-msc), the telnet
VTY, and the switch adapter that blocks numbers at osmo-hlr and osmo-msc (docs/switch.md)."""
