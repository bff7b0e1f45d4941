"""Fraudulent calls from the switch's call records (CDRs): SIM boxes by behaviour, Wangiri and
spoofed caller ids (issue 18, docs/calls.md).

    files dropped in a folder / a TCP stream / POST /api/v1/cdr
        --reader--> Cdr --CallAnalyzer--> CallFinding --> call_findings + alerts --> cases
"""
