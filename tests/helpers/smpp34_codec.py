"""smpp34's codec behind a pipe, for the differential tests (tests/test_pdu_differential.py).

smpp34 1.5.0 (Rust) crashes at interpreter exit about one time in ten, so it only ever runs here,
in a child process that ends with os._exit(0).

What smpp34 offers as a standalone codec (checked against its _smpp34.pyi): typed `SubmitSm` and
`DeliverSm` (construct with fields, `.encode()`), and `decode(bytes)` which returns SubmitSm,
DeliverSm, or `RawPdu` (header + raw body) for every other command_id. So submit_sm and
deliver_sm can be compared field by field in both directions; for other PDUs only smpp34's
header parse and framing checks can be compared.

Protocol: one JSON object per input line, one JSON object per output line.
  {"op": "decode", "hex": "..."}
      -> {"ok": true, "type": "SubmitSm"|"DeliverSm", "command_id": .., "sequence": ..,
          "fields": {...}, "short_message": hex, "sm_length": .., "tlvs": [[tag, hex], ...]}
      -> {"ok": true, "type": "RawPdu", "command_length": .., "command_id": .., "status": ..,
          "sequence": .., "body": hex}
      -> {"ok": false, "error": "ESME_RINVPARLEN (0x000000C2)", "kind": "SmppError"}
  {"op": "encode", "kind": "submit_sm"|"deliver_sm", "fields": {...}, "short_message": hex,
   "tlvs": [[tag, hex], ...], "sequence": N}
      -> {"ok": true, "hex": "..."} | {"ok": false, "error": "...", "kind": "ValueError"}
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

STR_FIELDS = (
    "service_type",
    "source_addr",
    "destination_addr",
    "schedule_delivery_time",
    "validity_period",
)
INT_FIELDS = (
    "source_addr_ton",
    "source_addr_npi",
    "dest_addr_ton",
    "dest_addr_npi",
    "esm_class",
    "protocol_id",
    "priority_flag",
    "registered_delivery",
    "replace_if_present_flag",
    "data_coding",
    "sm_default_msg_id",
)


def _decode(smpp34: Any, req: dict[str, Any]) -> dict[str, Any]:
    pdu = smpp34.decode(bytes.fromhex(req["hex"]))
    kind = type(pdu).__name__
    if kind == "RawPdu":
        return {
            "ok": True,
            "type": kind,
            "command_length": pdu.command_length,
            "command_id": pdu.command_id,
            "status": pdu.command_status,
            "sequence": pdu.sequence_number,
            "body": bytes(pdu.body).hex(),
        }
    fields: dict[str, Any] = {f: getattr(pdu, f) for f in (*STR_FIELDS, *INT_FIELDS)}
    return {
        "ok": True,
        "type": kind,
        "command_id": pdu.command_id,
        "sequence": pdu.sequence_number,
        "fields": fields,
        "sm_length": pdu.sm_length,
        "short_message": bytes(pdu.short_message).hex(),
        "tlvs": [[t.tag, bytes(t.value).hex()] for t in pdu.tlvs],
    }


def _encode(smpp34: Any, req: dict[str, Any]) -> dict[str, Any]:
    cls = {"submit_sm": smpp34.SubmitSm, "deliver_sm": smpp34.DeliverSm}[req["kind"]]
    fields = dict(req["fields"])
    source = fields.pop("source_addr")
    dest = fields.pop("destination_addr")
    tlvs = [smpp34.Tlv(tag, bytes.fromhex(value)) for tag, value in req.get("tlvs", [])]
    pdu = cls(
        source,
        dest,
        bytes.fromhex(req.get("short_message", "")),
        tlvs=tlvs,
        sequence_number=req.get("sequence", 1),
        **fields,
    )
    return {"ok": True, "hex": bytes(pdu.encode()).hex()}


def main() -> None:
    import smpp34

    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
            if req["op"] == "decode":
                out = _decode(smpp34, req)
            elif req["op"] == "encode":
                out = _encode(smpp34, req)
            elif req["op"] == "version":
                out = {"ok": True, "version": smpp34.__version__}
            else:
                out = {"ok": False, "kind": "BadRequest", "error": req["op"]}
        except Exception as exc:  # report every failure to the test, never die
            out = {"ok": False, "kind": type(exc).__name__, "error": str(exc)}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    try:
        main()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
