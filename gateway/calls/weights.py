"""The SIM-box model's weights (FEATURES' order in gateway/calls/analyzer.py), written
by `fraudgate calls tune` (docs/calls.md)."""

WEIGHTS: tuple[float, ...] = (
    0.0,  # log_out
    -0.3575,  # in_ratio
    -1.8789,  # sms_data
    0.1264,  # new_dest
    0.0092,  # b2b
    2.2451,  # night
    0.2188,  # one_cell
    2.3287,  # imsis_on_imei
    1.511,  # imeis
    0.0,  # networks
)
BIAS = -1.1443
SOURCE = "simulators.cdr seed 1, mix tune, 3 days (227,263 records, 80 SIM-box SIMs)"
