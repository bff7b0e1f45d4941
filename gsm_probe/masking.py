"""What the driver logs of numbers and commands: masked (DESIGN.md §7)."""

from __future__ import annotations


def masked(number: str) -> str:
    """For logs: +77011234567 -> +7701***4567 (DESIGN.md §7: no numbers in clear)."""
    digits = number.lstrip("+")
    if not digits:
        return "-"
    if len(digits) < 6:
        return "***"
    return f"{number[: len(number) - len(digits)]}{digits[:4]}***{digits[-4:]}"


def shown(command: str) -> str:
    return 'AT+CPIN="****"' if command.upper().startswith("AT+CPIN=") else command
