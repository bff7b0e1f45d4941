"""The serving cell as vendors report it: SIMCom +CPSI, Quectel +QENG (+CREG is the
standard fallback, in the modem)."""

from __future__ import annotations

from gsm_probe.at import params
from gsm_probe.model import ServingCell


def vendor_of(manufacturer: str) -> str:
    upper = manufacturer.upper()
    if "SIMCOM" in upper:
        return "simcom"
    if "QUECTEL" in upper:
        return "quectel"
    return ""


def hex_id(field: str) -> str:
    """A cell id given as "0x1A2B" or decimal, as hex (the +CREG form)."""
    field = field.strip()
    if field.lower().startswith("0x"):
        return field[2:].upper()
    return f"{int(field):X}" if field.isdigit() else field.upper()


def parse_cpsi(value: str) -> ServingCell | None:
    """SIMCom +CPSI: <mode>,<op mode>,<MCC>-<MNC>,<LAC|TAC>,<cell id>,… (SIM7500/7600 AT
    manual §4.2.17); None without service."""
    fields = params(value)
    if len(fields) < 5 or fields[0].upper() in ("NO SERVICE", ""):
        return None
    return ServingCell(
        fields[0].upper(), hex_id(fields[3]), hex_id(fields[4]), fields[2], "+CPSI"
    )


def parse_qeng(lines: list[str]) -> ServingCell | None:
    """Quectel +QENG: "servingcell",<state>,"LTE",<is_tdd>,<mcc>,<mnc>,<cellid>,…,<tac>,… and
    "GSM"/"WCDMA",<mcc>,<mnc>,<lac>,<cellid>,… (EC25/BG96 AT manual, AT+QENG); None in
    SEARCH / LIMSRV without a cell."""
    fields: list[str] = []
    for line in lines:
        if line.upper().startswith("+QENG:"):
            fields += params(line.split(":", 1)[1])
    if len(fields) < 7 or fields[0].lower() != "servingcell":
        return None
    rat = fields[2].upper()
    if rat == "LTE" and len(fields) > 12:
        return ServingCell(
            rat, fields[12].upper(), fields[6].upper(), f"{fields[4]}-{fields[5]}", "+QENG"
        )
    if rat in ("GSM", "WCDMA"):
        return ServingCell(
            rat, fields[5].upper(), fields[6].upper(), f"{fields[3]}-{fields[4]}", "+QENG"
        )
    return None
