"""Blocking numbers on the switch (point 120, R5): the `SwitchControl` port and its HTTP adapter
(`port`), the operator's provisioning command-line tool (`command`), an Osmocom core
(`osmocom`), and the `[switch]` settings that choose one (`config`). docs/switch.md."""
