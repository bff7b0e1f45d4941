"""Everything AT: the TS 27.007 / 27.005 / V.250 parser (`at`), the TS 23.040 SMS PDU codec
(`ts23040`), the modem driver over pyserial (`modem`) and the probe manager (`probes`)."""
