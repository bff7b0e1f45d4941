"""The SIM-box model's weights (FEATURES' order in gateway/calls/analyzer.py), written
by `fraudgate calls tune` (docs/calls.md)."""

WEIGHTS: tuple[float, ...] = (
    0.0,  # log_out
    -0.4922,  # in_ratio
    -1.539,  # sms_data
    0.253,  # new_dest
    0.0081,  # b2b
    2.4874,  # night
    0.4073,  # one_cell
    2.1372,  # imsis_on_imei
    2.2992,  # imeis
    0.0019,  # networks
)
BIAS = -1.6308
SOURCE = 'simulators.cdr seed 1, mix tune, 3 days (227,263 records, 80 SIM-box SIMs)'
