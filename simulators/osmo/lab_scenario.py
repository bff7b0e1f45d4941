"""`fraudgate lab scenario`: the lab, the gateway inline, virtual phones, and who saw what.

By default it starts everything itself: the lab (osmo-hlr + osmo-msc with `smpp-first`), a
mosquitto broker on a free port, the gateway from config/lab-gateway.toml (enforcing, bound to
osmo-msc as its ESME, forwarding accepted messages onward), then the scenario's phones over SGs.
`--no-gateway` runs the same phones with osmo-msc delivering on its own (nothing is stopped);
`--running` uses a lab already up (`fraudgate lab up`) and whatever gateway is bound to it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import time
from pathlib import Path

from gateway.config import GatewayConfig, load
from gateway.config_check import ConfigError
from gateway.daemon import Gateway, RunReport
from gateway.osmocom.ctrl import CtrlClient, CtrlError
from simulators.broker import Mosquitto
from simulators.osmo.lab import STATE_FILE, Lab, LabConfig, LabError, LabState, lab_status
from simulators.osmo.lab_cli import LabSettings
from simulators.osmo.mme import MmeError, VirtualMme, shim_framing
from simulators.osmo.provision import ProvisionError, provision
from simulators.osmo.scenario import format_result, load_scenario, run_scenario
from simulators.osmo.sgsap import Lai

# What ends a scenario run with a one-line error (exit 2) instead of a traceback.
ERRORS = (CtrlError, MmeError, ProvisionError)


def lab_gateway_config(
    path: Path, lab: LabConfig, broker_port: int, data_dir: Path
) -> GatewayConfig:
    """config/lab-gateway.toml aimed at this lab's SMPP port and this broker."""
    cfg = load(path)
    if not cfg.smsc:
        raise ConfigError(f"{path}: no [[smsc]] bind to aim at the lab")
    link = cfg.smsc[0]
    esme = dataclasses.replace(
        link.esme,
        host=lab.host,
        port=lab.smpp_port,
        system_id=lab.esme_system_id,
        password=lab.esme_password,
    )
    cfg.smsc = [dataclasses.replace(link, esme=esme)]
    cfg.mqtt = dataclasses.replace(cfg.mqtt, enabled=True, host="127.0.0.1", port=broker_port)
    cfg.data_dir = data_dir
    return cfg


def running_lab_config(workdir: Path) -> LabConfig:
    st = lab_status(workdir)
    if st is None or not st.running:
        raise LabError(f"no lab runs from {workdir} (`fraudgate lab up --detach` first)")
    return LabState.load(workdir / STATE_FILE).lab_config()


async def run_lab_scenario(settings: LabSettings, args: argparse.Namespace) -> int:
    if settings.scenario is None:
        raise ConfigError("no scenario: give a file or set [lab] scenario")
    sc = load_scenario(settings.scenario)
    inline = not args.no_gateway
    started = time.monotonic()
    report: RunReport | None = None
    async with contextlib.AsyncExitStack() as stack:
        if args.running:
            lab_cfg = running_lab_config(settings.lab.workdir)
            check = lab_cfg.smpp_first and inline
            # A lab left running may preload a shim built before the uplink framing.
            framing = shim_framing(LabState.load(lab_cfg.workdir / STATE_FILE).shim)
        else:
            lab_cfg = dataclasses.replace(settings.lab, smpp_first=inline)
            lab = await stack.enter_async_context(Lab(lab_cfg))
            framing = shim_framing(lab.shim)
            check = inline
        async with CtrlClient(lab_cfg.host, Lab.hlr_ctrl) as ctrl:
            provisioned = await provision(ctrl, [p.subscriber for p in sc.phones])
        print(
            f"# lab: osmo-msc SMPP {lab_cfg.host}:{lab_cfg.smpp_port}, SGs {lab_cfg.sgs_port}, "
            f"smpp-first {'on' if lab_cfg.smpp_first else 'off'}; HLR: {provisioned}",
            flush=True,
        )
        gateway: Gateway | None = None
        gw_task: asyncio.Task[RunReport] | None = None
        gw_stop = asyncio.Event()
        if inline and not args.running:
            broker = await stack.enter_async_context(Mosquitto())
            cfg = lab_gateway_config(
                args.gateway_config, lab_cfg, broker.port, lab_cfg.workdir / "gateway"
            )
            gateway = Gateway(cfg)
            gw_task = asyncio.create_task(gateway.run(gw_stop))
            banner = (
                f"# gateway: {cfg.mode}, bound to osmo-msc as {lab_cfg.esme_system_id!r}, "
                f"alerts on mosquitto 127.0.0.1:{broker.port}"
            )
        try:
            if gateway is not None and gw_task is not None:
                await _bound(gateway, gw_task)  # inside the try: stopped if it never binds
                print(banner, flush=True)
            lai = Lai(lab_cfg.mcc, lab_cfg.mnc, lab_cfg.lac)
            async with VirtualMme(lab_cfg.host, lab_cfg.sgs_port, lai=lai, framing=framing) as mme:
                result = await run_scenario(sc, mme, check=check)
        finally:
            if gw_task is not None:
                gw_stop.set()
                report = await gw_task
    print(format_result(sc, result))
    if report is not None and gateway is not None:
        print(gateway_summary(report))
    if not check:
        print("# expectations not checked: no gateway inline")
    print(f"# {time.monotonic() - started:.1f} s in all")
    return 1 if result.unmet else 0


async def _bound(gateway: Gateway, task: asyncio.Task[RunReport]) -> None:
    ready = asyncio.ensure_future(gateway.ready.wait())
    await asyncio.wait({ready, task}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()  # raises what stopped the gateway
        raise LabError("the gateway stopped before it was ready")
    try:
        await asyncio.wait_for(gateway.supervisors[0].wait_bound(), 10)
    except TimeoutError:
        raise LabError("the gateway did not bind to osmo-msc within 10 s") from None


def gateway_summary(report: RunReport) -> str:
    lines = []
    for name, st in report.stats.items():
        lines.append(
            f"gateway bind {name}: {st.received} SMS inspected, {st.allowed} allowed, "
            f"{st.flagged} flagged, {st.blocked} blocked ({st.rejected} answered with RP-ERROR), "
            f"{st.forwarded} forwarded onward ({st.forward_failed} failed), "
            f"receipts {st.receipts_matched} matched / {st.receipts_unmatched} unmatched"
        )
    lines.append(
        f"gateway: {report.committed} recorded, {report.alerts_published} alerts published"
    )
    return "\n".join(lines)
