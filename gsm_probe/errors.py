"""The modem driver's typed errors."""

from __future__ import annotations


class ModemError(Exception):
    """A failure of the modem link (the AT-level failures are `gsm_probe.at.AtError`)."""


class ModemGone(ModemError):
    """The link is lost or cannot be opened (unplugged: EIO; socket:// refused or closed)."""


class ModemHung(ModemGone):
    """The modem stopped answering and neither ESC + AT nor a reopen brought it back."""


class ModemTimeout(ModemError):
    """One command got no final result code in time."""


class SimLocked(ModemError):
    """+CPIN: the SIM wants a PIN that is not configured, or a PUK."""
