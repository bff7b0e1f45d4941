"""`fraudgate run -c FILE`: the gateway daemon.

The root is one `asyncio.TaskGroup` of supervisors: one `EsmeSupervisor` per SMSC bind (each
reconnects with backoff), the Recorder (group commit), the outbox dispatcher (MQTT, reconnects
with backoff) and housekeeping (text retention, rule reloads). SIGTERM / SIGINT drain: every SMS
already received is inspected, recorded and answered, then each bind unbinds, then the alerts
still in the outbox get a last chance to go out. SIGHUP reloads the rule files, the classifier's
model file when it changed ([detectors] model) and the test plans, without touching a bind.
With `[[probes.probe]]` configured, the probe manager (gateway.probes.manager) runs in the same
group: one modem supervisor per probe, test-call findings through the same store and outbox.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.calls.run import Calls
from gateway.cases.workflow import Workflow
from gateway.config import DEFAULT_CONFIG, GatewayConfig, SmscLink, load
from gateway.config_check import ConfigError
from gateway.console.app import Sources
from gateway.console.live import LiveFeed
from gateway.detect.campaigns import SnapshotError
from gateway.detect.classifier import ClassifierDetector, ModelError
from gateway.domain import Inspected
from gateway.feedback.cache import ExemptionCache
from gateway.leader import WORKFLOW_LEASE, LeaderWork
from gateway.metrics.registry import Metrics
from gateway.metrics.server import open_metrics
from gateway.pipeline.delivery import DeliveryWriter
from gateway.pipeline.forward import ForwardingHandler
from gateway.pipeline.handler import GatewayHandler, PipelineStats
from gateway.pipeline.inspector import Inspector
from gateway.pipeline.policy import AnswerPolicy
from gateway.pipeline.recorder import Recorder
from gateway.pipeline.shared import SharedBatcher
from gateway.probes.manager import ProbeManager
from gateway.probes.simbox import NAMES_A_NUMBER, Finding
from gateway.proxy.journal import Journal
from gateway.proxy.service import Proxy
from gateway.retention.purge import Retention
from gateway.store import Store
from gateway.store.errors import StoreError
from gateway.store.lease import LeaderLease
from gateway.store.urls import display_url
from gateway.wiring import (
    DispatcherPort,
    StorePort,
    build_inspector,
    build_probe_manager,
    open_dispatcher,
    open_shared,
    open_store,
    open_workflow,
)
from smsc.client import EsmeSupervisor

log = logging.getLogger("fraudgate.daemon")
CAMPAIGN_STATE = "campaigns"  # the detector_state row of the campaign detector

# Exit statuses of `fraudgate run` (README "Commands"). A supervisor should not restart on
# EXIT_CONFIG (nothing changes until someone edits the file) and may on EXIT_STORE.
EXIT_CONFIG = 2  # the configuration, or a file or directory it names, is not usable
EXIT_STORE = 3  # the database could not be opened at start-up (unreachable, refused, migration)


@dataclass
class RunReport:
    stats: dict[str, PipelineStats] = field(default_factory=dict)
    committed: int = 0
    store_failures: int = 0
    alerts_published: int = 0


class Gateway:
    """The wired daemon; `run(stop)` returns when `stop` is set and the drain is done."""

    def __init__(
        self,
        cfg: GatewayConfig,
        *,
        inspector: Inspector | None = None,
        on_inspected: Callable[[Inspected], None] | None = None,
        on_finding: Callable[[Finding], None] | None = None,
    ) -> None:
        self.cfg = cfg
        # analysts' exemptions (docs/api.md "Feedback"): empty, so matching nothing, until the
        # workflow loads them; a given inspector keeps whatever it was built with
        self.exemptions = ExemptionCache(max_active=cfg.feedback.max_active)
        self.inspector = inspector or build_inspector(cfg, exemptions=self.exemptions)
        self.on_inspected = on_inspected
        self.on_finding = on_finding
        # the console's live page: counts and the latest caught SMS; its streams hold HTTP
        # connections, so they take at most a quarter of the API server's ([api] max_connections)
        self.live = LiveFeed(max_streams=max(1, cfg.api.max_connections // 4))
        self.probes: ProbeManager | None = None
        self.proxy: Proxy | None = None  # [proxy]: the A2P SMPP proxy (docs/proxy.md)
        self.calls: Calls | None = None  # [calls]: call records (docs/calls.md)
        self.workflow: Workflow | None = None
        self.handlers: list[GatewayHandler] = []
        self.supervisors: list[EsmeSupervisor] = []
        self.dispatcher: DispatcherPort | None = None  # the alerts' outbox dispatcher
        self.ready = asyncio.Event()
        self.report = RunReport()
        self.database_ok = True
        self.retention: Retention | None = None  # personal data (docs/retention.md), in run()
        self.metrics = Metrics()  # this gateway's registry, wired in run() (docs/operations.md)
        self.shared: SharedBatcher | None = None  # [shared]: counts with the other nodes
        self.leases: dict[str, LeaderLease] = {}  # the singletons' leases, by role
        self.leader: LeaderWork | None = None  # runs them while the lease is held
        # several nodes share one database: each keeps its own campaign snapshot
        self.campaign_state = (
            f"{CAMPAIGN_STATE}@{cfg.shared.node_name}" if cfg.shared.clustered else CAMPAIGN_STATE
        )

    async def run(self, stop: asyncio.Event) -> RunReport:
        cfg = self.cfg
        check_data_dir(cfg.data_dir)
        store = await open_store(cfg)
        self.retention = Retention(store, cfg.retention)
        try:
            await self._restore_campaigns(store)
            async with open_dispatcher(cfg, store) as dispatcher:
                self.dispatcher = dispatcher
                recorder = Recorder(
                    store,
                    batch_max=cfg.batch_max,
                    batch_delay=cfg.batch_delay,
                    commit_timeout=cfg.commit_timeout,
                    on_committed=lambda n: dispatcher.notify(),
                    on_health=lambda ok, why: self._database_health(dispatcher, ok, why),
                )
                policy = AnswerPolicy(
                    cfg.enforcing,
                    cfg.block_status,
                    cfg.store_error_status,
                    cfg.forward_error_status,
                )
                for link in cfg.smsc:
                    self._bind(link, recorder, policy, store)
                if cfg.proxy.enabled:
                    self.proxy = Proxy(
                        cfg.proxy,
                        inspector=self.inspector,
                        recorder=recorder,
                        journal=Journal(
                            store, commit_timeout=cfg.commit_timeout, node=cfg.shared.node_name
                        ),
                        enforcing=cfg.enforcing,
                        block_status=cfg.block_status,
                        reassembly_timeout=cfg.reassembly_timeout,
                        on_inspected=self._inspected,
                        retention_days=cfg.text_retention_days,
                    )
                if cfg.calls.enabled:
                    self.calls = Calls(
                        cfg.calls, store, wake=dispatcher.notify, node=cfg.shared.node_name
                    )
                self.probes = build_probe_manager(cfg, store, dispatcher, self._probe_finding)
                labeller = self.inspector.label_campaign
                sources = Sources(self.live, self.probes, self.inspector.campaigns)
                async with (
                    open_shared(cfg, self.inspector, self._shared_health) as shared,
                    open_workflow(
                        cfg, store, dispatcher, self.exemptions, labeller, sources
                    ) as workflow,
                    open_metrics(self, store, recorder),
                ):
                    self.workflow = workflow
                    self.shared = shared
                    for handler in self.handlers:
                        handler.shared = shared
                        handler.parts = None if shared is None else shared.parts
                    async with self._leader(store) as leader:
                        await self._run_tasks(stop, recorder, dispatcher, store, leader)
                self.report.committed = recorder.committed
                self.report.store_failures = recorder.failed
                self.report.alerts_published = dispatcher.published
        finally:
            await store.close()
        return self.report

    def _bind(self, link: SmscLink, recorder: Recorder, policy: AnswerPolicy, store: Store) -> None:
        """The handler and the supervisor of one SMSC bind ([[smsc]])."""
        cfg = self.cfg
        common: dict[str, Any] = {
            "reassembly_timeout": cfg.reassembly_timeout,
            "on_inspected": self._inspected,
            "ia5_is_gsm": link.ia5_is_gsm,
            "scope": f"{link.esme.system_id}@{link.esme.host}:{link.esme.port}",
            "redelivery_window": cfg.redelivery_window,
        }
        args = (link.esme.label, link.route, self.inspector, recorder, policy)
        handler: GatewayHandler
        if link.forward:
            handler = ForwardingHandler(
                *args, forward_timeout=link.forward_timeout,
                deliveries=DeliveryWriter(store, time.time), **common,
            )  # fmt: skip
        else:
            handler = GatewayHandler(*args, **common)
        self.handlers.append(handler)
        supervisor = EsmeSupervisor(link.esme, handler)
        if isinstance(handler, ForwardingHandler):  # held parts go on after a rebind
            handler.current_link = lambda s=supervisor: s.link
        self.supervisors.append(supervisor)
        self.report.stats[link.esme.label] = handler.stats

    def _probe_finding(self, finding: Finding) -> None:
        """A probe test's result: a SIM it names is a confirmed SIM-box SIM for the call
        analyzer (its IMEI and cell siblings become suspects), then the embedder's callback."""
        if self.calls is not None and finding.number and finding.outcome in NAMES_A_NUMBER:
            self.calls.confirm(finding.number, finding.at)
        if self.on_finding is not None:
            self.on_finding(finding)

    def _inspected(self, item: Inspected) -> None:
        """Every SMS inspected, in order: the console's live feed, then the embedder's."""
        self.live.add(item)
        if self.on_inspected is not None:
            self.on_inspected(item)

    @contextlib.asynccontextmanager
    async def _leader(self, store: Store) -> AsyncIterator[LeaderWork | None]:
        """The case workflow's lease: its singletons run on one node at a time."""
        if self.workflow is None:
            yield None
            return
        node = self.cfg.shared.node_name
        async with LeaderLease(store, WORKFLOW_LEASE, node=node) as lease:
            self.leases[WORKFLOW_LEASE] = lease
            try:
                # PostgreSQL: the previous holder may run its term until its next check
                settle = lease.check_every + lease.timeout if store.dialect == "postgresql" else 0
                self.leader = LeaderWork(lease, self.workflow, node, settle=settle)
                yield self.leader
            finally:
                self.leases.pop(WORKFLOW_LEASE, None)

    async def _run_tasks(
        self,
        stop: asyncio.Event,
        recorder: Recorder,
        dispatcher: DispatcherPort,
        store: StorePort,
        leader: LeaderWork | None = None,
    ) -> None:
        async with asyncio.TaskGroup() as tg:
            core = [
                tg.create_task(recorder.run(), name="recorder"),
                tg.create_task(dispatcher.run(), name="outbox"),
                tg.create_task(self._housekeeping(store), name="housekeeping"),
                tg.create_task(self._keep_campaigns(store), name="campaigns"),
                tg.create_task(self.live.run(), name="live"),
            ]
            links = [
                tg.create_task(s.run(), name=f"smsc {s.config.label}") for s in self.supervisors
            ]
            if self.probes is not None:
                links.append(tg.create_task(self.probes.run(), name="probes"))
            proxy_stop = asyncio.Event()
            if self.proxy is not None:
                links.append(tg.create_task(self.proxy.run(proxy_stop), name="proxy"))
            calls = None if self.calls is None else tg.create_task(self.calls.run(), name="calls")
            singletons = None if leader is None else tg.create_task(leader.run(), name="leader")
            # Everything built so far (rules, the classifier, imported modules) lives as long as
            # the process: out of the collector's sight, so its full passes stay short.
            gc.collect()
            gc.freeze()
            self.ready.set()
            mode = "enforcing" if self.cfg.enforcing else "monitor-only"
            log.info("gateway running (%s) with %d SMSC bind(s)%s", mode, len(self.supervisors),
                     ", the A2P proxy" if self.proxy is not None else "")  # fmt: skip
            await stop.wait()
            log.info("draining: answering what was received, then unbinding")
            proxy_stop.set()  # aggregators unbound, their submits answered and forwarded
            if calls is not None:  # a file being read resumes from its checkpoint next run
                calls.cancel()
            await asyncio.gather(*(h.drain(10.0) for h in self.handlers))
            for s in self.supervisors:
                s.stop()
            if self.probes is not None:
                self.probes.stop()  # the findings in hand are recorded before it returns
            if singletons is not None:  # stops the workflow and the centre dispatcher
                singletons.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await singletons
            await asyncio.gather(*links)
            await dispatcher.flush(5.0)
            self.live.close()  # the console's open live streams end
            for t in core:
                t.cancel()
            await self._save_campaigns(store)

    async def _restore_campaigns(self, store: StorePort) -> None:
        """The campaign state saved by the last run (labels, clusters within their window)."""
        campaigns = self.inspector.campaigns
        if campaigns is None:
            return
        try:
            data = await store.load_state(self.campaign_state)
            if data is not None:
                n = campaigns.restore(data, time.time())
                log.info("campaign state restored: %d campaigns", n)
        except (StoreError, SnapshotError) as exc:  # a bad snapshot: start afresh, say so
            log.warning("campaign state not restored, starting empty: %s", exc)

    async def _save_campaigns(self, store: StorePort) -> None:
        campaigns = self.inspector.campaigns
        if campaigns is None:
            return
        try:
            await store.save_state(self.campaign_state, campaigns.snapshot(), time.time())
        except StoreError as exc:  # the next save tries again; labels are in memory meanwhile
            log.warning("campaign state not saved: %s", exc)

    async def _keep_campaigns(self, store: StorePort) -> None:
        while True:
            await asyncio.sleep(self.cfg.campaigns_save_every)
            await self._save_campaigns(store)

    async def _housekeeping(self, store: StorePort) -> None:
        retention = self.cfg.text_retention_days * 86400
        while True:
            try:
                purged = await store.purge_text(time.time() - retention)
                if self.retention is not None:  # personal data past its period (logs counts)
                    await self.retention.run(time.time())
            except StoreError as exc:  # retention is a legal duty: say so, retry sooner
                log.warning("retention not applied (retrying in 5 min): %s", exc)
                await asyncio.sleep(300)
                continue
            if purged:
                log.info("text retention: erased the text of %d messages", purged)
            await asyncio.sleep(3600)

    def _shared_health(self, ok: bool, why: str) -> None:
        """Redis reachable or not: retained on MQTT (docs/operations.md "Several nodes")."""
        if self.dispatcher is not None:
            self._publish_health(self.dispatcher, f"shared/{self.cfg.shared.node_name}", ok, why)

    def _database_health(self, dispatcher: DispatcherPort, ok: bool, why: str) -> None:
        """The readiness signal of the SMS path: retained on MQTT, so operators' monitoring
        sees a database that stopped answering (the SMSC gets 0x14 meanwhile)."""
        self.database_ok = ok
        part = "database"
        if self.cfg.shared.clustered:  # each node's own view of the database
            part += f"/{self.cfg.shared.node_name}"
        self._publish_health(dispatcher, part, ok, why)

    def _publish_health(self, dispatcher: DispatcherPort, part: str, ok: bool, why: str) -> None:
        """The retained `{prefix}/health/{part}` state: ok or failing, since when, and why."""
        state: dict[str, object] = {"state": "ok" if ok else "failing", "since": time.time()}
        if why:
            state["detail"] = why[:300]
        dispatcher.set_state(f"{self.cfg.mqtt.topic_prefix}/health/{part}", state)

    def reload(self) -> None:
        """SIGHUP: rule files, the model file, and the probes' test plans."""
        self.reload_rules()
        self.reload_models()
        if self.probes is not None:
            self.probes.load_plans(changed_only=True)

    def reload_rules(self) -> None:
        for det in self.inspector.detectors + self.inspector.text_detectors:
            reload = getattr(det, "reload", None)
            if reload is None:
                continue
            try:
                reload()
                log.info("reloaded rules of %s", det.name)
            except (ConfigError, OSError) as exc:
                log.error("rules of %s not reloaded, previous rules kept: %s", det.name, exc)

    def reload_models(self) -> None:
        """A detector reading a model file (the classifier with [detectors] model) re-reads it
        when it changed and swaps it in between two messages; a broken file keeps the model in
        use, in one log line naming the file and what is wrong (ModelError starts with it)."""
        seen: set[int] = set()
        for det in self.inspector.detectors + self.inspector.text_detectors:
            if not isinstance(det, ClassifierDetector) or id(det) in seen:
                continue
            seen.add(id(det))  # the classifier is in both lists
            try:
                if det.maybe_reload_model():
                    log.info("%s model reloaded from %s: rule id %s", det.name, det.path,
                             det.rule_id)  # fmt: skip
            except (ModelError, ValueError) as exc:
                log.error("%s model not reloaded, keeping the one in use: %s", det.name, exc)


def check_data_dir(path: Path) -> None:
    """Create `gateway.data_dir` if needed and make sure files can be created in it (the SQLite
    database lives there by default); ConfigError naming the key when not."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".fraudgate-write-test-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"gateway.data_dir {path}: not writable: {exc.strerror or exc}") from exc


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", type=Path, default=DEFAULT_CONFIG, help="TOML file")


def run(args: argparse.Namespace) -> int:
    try:
        cfg = load(args.config)
    except ConfigError as exc:
        return _fail(f"configuration error: {exc}", EXIT_CONFIG)
    if not cfg.smsc and not cfg.probes.probes and not cfg.proxy.enabled and not cfg.calls.enabled:
        return _fail(
            "configuration error: nothing to do: no [[smsc]] bind, no [[probes.probe]], no "
            "[proxy] and no [calls] configured",
            EXIT_CONFIG,
        )

    async def main() -> None:
        stop = asyncio.Event()
        gateway = Gateway(cfg)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, gateway.reload)
        report = await gateway.run(stop)
        for name, st in report.stats.items():
            log.info(
                "%s: %d SMS, %d flagged, %d blocked (%d rejected), %d store errors",
                name, st.received, st.flagged, st.blocked, st.rejected, st.store_errors,
            )  # fmt: skip

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(main())
    except ConfigError as exc:  # found while starting: a file the configuration names is unusable
        return _fail(f"configuration error: {exc}", EXIT_CONFIG)
    except StoreError as exc:  # opening the store, before any bind: once running, it is retried
        return _fail(f"cannot open the store {display_url(cfg.database_url)}: {exc}", EXIT_STORE)
    return 0


def _fail(message: str, status: int) -> int:
    """One line on stderr (an operator's terminal or the journal), no traceback."""
    print("fraudgate run: " + " ".join(message.split()), file=sys.stderr)
    return status
