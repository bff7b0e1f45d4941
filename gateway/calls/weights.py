"""The SIM-box model's weights (FEATURES' order in gateway/calls/analyzer.py), written
by `fraudgate calls tune` (docs/calls.md)."""

WEIGHTS: tuple[float, ...] = (
    0.0,  # log_out
    -0.7699,  # in_ratio
    -1.7352,  # sms_data
    0.1146,  # new_dest
    0.0,  # b2b
    2.234,  # night
    0.3715,  # one_cell
    1.8876,  # imsis_on_imei
    2.1973,  # imeis
    0.0,  # networks
)
BIAS = -0.7959
SOURCE = 'simulators.cdr seed 1, mix tune, 3 days (252,340 records, 72 SIM-box SIMs)'
