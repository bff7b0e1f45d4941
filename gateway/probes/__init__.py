"""The radio side in the daemon: SIM-box detection by test calls and SMS (`simbox`, sans-I/O)
and the probe manager that runs the modems, matches their events and alerts (`manager`).
docs/probes.md. The modem driver itself is gsm_probe."""
