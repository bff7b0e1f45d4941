"""Builds the daemon's parts from its configuration: detectors, store, outbox dispatcher.

The only module that knows which adapter implements which port."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from gateway.alerts.dispatcher import OutboxStore
from gateway.alerts.settings import DEFAULT_CLIENT_ID, MqttSettings
from gateway.api.settings import ApiSettings
from gateway.centre.config import CentreSettings
from gateway.config import GatewayConfig
from gateway.config_check import ConfigError
from gateway.console.settings import ConsoleSettings
from gateway.detect.velocity import VelocityDetector
from gateway.domain import Alert, Detector, Inspected
from gateway.feedback import Exemptions, FeedbackLimits
from gateway.feedback.settings import FeedbackSettings
from gateway.pipeline.inspector import Inspector
from gateway.probes.manager import HealthLimits, ProbeManager
from gateway.probes.simbox import Finding
from gateway.store.urls import display_url
from gsm_probe.events import ProbeEvent, ProbeHealth

if TYPE_CHECKING:
    from gateway.alerts.mqtt import MqttConfig
    from gateway.api import ApiServer
    from gateway.cases import Cases
    from gateway.cases.workflow import Workflow
    from gateway.centre import CentreEndpoint
    from gateway.console import Sources
    from gateway.detect.classifier import TextClassifier
    from gateway.feedback.cache import ExemptionCache
    from gateway.pipeline.shared import SharedBatcher
    from gateway.store import Store
    from gateway.switch.port import SwitchControl

log = logging.getLogger("fraudgate.wiring")


class StorePort(OutboxStore, Protocol):
    """What the daemon needs of its database (gateway.store.Store implements it)."""

    async def record(self, items: Sequence[Inspected]) -> set[str]: ...

    async def record_findings(
        self, findings: Sequence[Finding], new_alerts: Sequence[Alert]
    ) -> None: ...

    async def purge_text(self, older_than: float) -> int: ...

    async def save_state(self, name: str, data: bytes, now: float) -> None: ...

    async def load_state(self, name: str) -> bytes | None: ...

    async def close(self) -> None: ...


class DispatcherPort(Protocol):
    published: int

    async def run(self) -> None: ...

    def notify(self) -> None: ...

    def set_state(self, topic: str, payload: dict[str, object]) -> None: ...

    async def flush(self, timeout: float) -> None: ...


def build_detectors(
    cfg: GatewayConfig, model: TextClassifier | None = None
) -> tuple[list[Detector], list[Detector]]:
    """(all detectors, the text-only ones used on texts forwarded to the complaint number).
    `model`: the classifier's model instead of the configured one (evaluation folds)."""
    from gateway.detect.classifier import ClassifierDetector, default_model
    from gateway.detect.content import ContentDetector
    from gateway.detect.greyroute import GreyRouteDetector
    from gateway.detect.sender import SenderDetector
    from gateway.detect.urls import UrlDetector

    rules = cfg.rules_dir
    content = ContentDetector.from_file(rules / "content.toml")
    urls = UrlDetector.from_file(rules / "brands.toml")
    sender = SenderDetector.from_file(rules / "senders.toml")
    weight = cfg.classifier_weight
    if model is not None:
        classifier = ClassifierDetector(model, weight=weight)
    elif cfg.model:  # re-read on SIGHUP when the file changed (Gateway.reload_models)
        classifier = ClassifierDetector.from_file(cfg.model, weight=weight)
    else:
        classifier = ClassifierDetector(default_model(), weight=weight)
    text_only: list[Detector] = [content, urls, classifier]
    velocity = VelocityDetector(
        cfg.velocity, registered=lambda sms: sender.protected(sms) is not None
    )
    detectors: list[Detector] = [content, urls]
    if cfg.campaigns is not None:
        from gateway.detect.campaigns import CampaignDetector

        # after content and urls (it reuses their normalised text and links); not a text-only
        # detector: on the complaint path the complainant would count as a campaign's sender
        detectors.append(CampaignDetector(cfg.campaigns))
    detectors += [classifier, sender, GreyRouteDetector(), velocity]
    return detectors, text_only


def build_inspector(
    cfg: GatewayConfig,
    model: TextClassifier | None = None,
    *,
    exemptions: Exemptions | None = None,
) -> Inspector:
    """`exemptions`: the analysts' feedback the Inspector consults (the daemon's cache, which
    open_workflow keeps loaded; none for evaluation and benchmarks)."""
    detectors, text_only = build_detectors(cfg, model)
    return Inspector(
        detectors,
        cfg.thresholds,
        complaint_numbers=cfg.complaint_numbers,
        text_detectors=text_only,
        exemptions=exemptions,
    )


def feedback_limits(f: FeedbackSettings) -> FeedbackLimits:
    return FeedbackLimits(
        default_hours=f.default_hours, max_hours=f.max_hours, max_active=f.max_active,
        refresh=f.refresh,
    )  # fmt: skip


async def open_store(cfg: GatewayConfig) -> Store:
    from gateway.store import Store

    store = await Store.open(cfg.database_url)
    try:
        await store.migrate()
    except BaseException:
        await store.close()  # its connections (and aiosqlite's threads) must not outlive it
        raise
    return store


@contextlib.asynccontextmanager
async def open_dispatcher(cfg: GatewayConfig, store: StorePort) -> AsyncIterator[DispatcherPort]:
    if not cfg.mqtt.enabled:
        yield NullDispatcher()
        return
    from gateway.alerts.dispatcher import OutboxDispatcher

    mqtt = mqtt_config(cfg.mqtt)
    if cfg.shared.clustered and mqtt.client_id == DEFAULT_CLIENT_ID:
        # several nodes: one broker session each (one client id would make the broker drop
        # each node's session whenever another connects)
        mqtt = dataclasses.replace(mqtt, client_id=f"{DEFAULT_CLIENT_ID}-{cfg.shared.node_name}")
    yield OutboxDispatcher(store, mqtt, store_timeout=cfg.commit_timeout, gather=cfg.mqtt.gather)


def mqtt_config(m: MqttSettings) -> MqttConfig:
    """The MQTT adapter's settings from [mqtt]. Its own checks and its TLS files (read once
    here) are reported as the file's mistakes, at start rather than at every reconnection."""
    from gateway.alerts.mqtt import MqttConfig

    try:
        mqtt = MqttConfig(
            host=m.host,
            port=m.port,
            client_id=m.client_id,
            username=m.username or None,
            password=m.password or None,
            topic_prefix=m.topic_prefix,
            tls=m.tls,
            tls_ca=m.tls_ca or None,
            tls_cert=m.tls_cert or None,
            tls_key=m.tls_key or None,
            tls_insecure=m.tls_insecure,
            keepalive=m.keepalive,
            timeout=m.timeout,
        )
        mqtt.check_tls_files()
    except ValueError as e:
        raise ConfigError(f"mqtt: {e}") from e
    return mqtt


class NullDispatcher:
    """MQTT disabled: alerts stay in the outbox table (for a later dispatcher or the API)."""

    published = 0

    async def run(self) -> None:
        return

    def notify(self) -> None:
        return

    def set_state(self, topic: str, payload: dict[str, object]) -> None:
        return

    async def flush(self, timeout: float) -> None:
        return


@contextlib.asynccontextmanager
async def open_shared(
    cfg: GatewayConfig, inspector: Inspector, on_health: Callable[[bool, str], None]
) -> AsyncIterator[SharedBatcher | None]:
    """The windows several nodes share ([shared] redis_url; None without one). Redis down at
    start is no reason not to start: the batcher judges locally and keeps trying."""
    s = cfg.shared
    if not s.redis_url:
        yield None
        return
    from gateway.pipeline.shared import SharedBatcher
    from gateway.pipeline.shared_parts import SharedParts
    from gateway.shared.redis_state import (
        RedisParts,
        RedisSharedState,
        SharedConfig,
        SharedStateError,
    )

    camp = cfg.campaigns
    config = SharedConfig(
        url=s.redis_url, prefix=s.prefix, key=s.pseudonym_key.encode(), timeout=s.timeout,
        window=cfg.velocity.window, fanout=cfg.velocity.sender_recipients,
        campaign_window=camp.window if camp else 900.0,
        campaign_min_senders=camp.min_senders if camp else 5,
        campaign_min_recipients=camp.min_recipients if camp else 20,
    )  # fmt: skip
    async with RedisSharedState(config) as state:
        try:
            await state.start()
            log.info("shared state in Redis (%s) as node %s", display_url(s.redis_url), s.node_name)
        except SharedStateError as exc:
            log.warning("shared state unreachable at start, judging locally meanwhile: %s", exc)
            on_health(False, str(exc))
        batcher = SharedBatcher(
            state, inspector, timeout=s.timeout, retry_after=s.retry_after,
            batch_max=s.batch_max, on_health=on_health,
        )  # fmt: skip
        batcher.parts = SharedParts(RedisParts(state), timeout=s.timeout, key=config.key)
        yield batcher


def build_probe_manager(
    cfg: GatewayConfig,
    store: StorePort,
    dispatcher: DispatcherPort,
    on_finding: Callable[[Finding], None] | None = None,
) -> ProbeManager | None:
    """The probe manager with a ModemSupervisor per configured probe (None without probes)."""
    p = cfg.probes
    if not p.probes:
        return None
    from gsm_probe.model import ModemConfig
    from gsm_probe.supervisor import ModemSupervisor

    settings = {s.name: s for s in p.probes}

    def runner(
        name: str, on_event: Callable[[ProbeEvent], None], on_health: Callable[[ProbeHealth], None]
    ) -> ModemSupervisor:
        s = settings[name]
        modem = ModemConfig(
            name=s.name,
            url=s.url,
            baudrate=s.baudrate,
            pin=s.pin or None,
            command_timeout=s.command_timeout,
            poll_interval=s.poll_interval,
            hangup_after_cli=s.hangup_after_cli,
        )
        return ModemSupervisor(modem, on_event, on_health)

    prefix = cfg.mqtt.topic_prefix
    return ProbeManager(
        list(settings),
        store,
        dispatcher,
        runner,
        plans=p.plans,
        topic=lambda name: f"{prefix}/probes/{name}",
        limits=HealthLimits(down_after=p.down_after, silent_after=p.silent_after),
        grace=p.grace,
        on_finding=on_finding,
    )


@contextlib.asynccontextmanager
async def open_workflow(
    cfg: GatewayConfig,
    store: Store,
    dispatcher: DispatcherPort,
    exemptions: ExemptionCache | None = None,
    label_campaign: Callable[[str, str, float], object] | None = None,
    sources: Sources | None = None,
) -> AsyncIterator[Workflow | None]:
    """Cases with their switch, registry and centre link, fed by the Workflow (None when
    [cases] is disabled). `exemptions`: the Inspector's cache of analysts' exemptions, kept
    loaded from the database here and told at once of those the API creates or revokes."""
    from pathlib import Path

    from gateway.cases.factory import build_cases, build_notices
    from gateway.cases.workflow import Waker, Workflow
    from gateway.centre import CentreConfig, CentreDispatcher
    from gateway.feedback.cache import ExemptionRefresher
    from gateway.feedback.repository import FeedbackRepository
    from gateway.switch.config import open_switch

    if not cfg.cases.enabled:
        yield None
        return
    async with contextlib.AsyncExitStack() as stack:
        switch: SwitchControl = await stack.enter_async_context(open_switch(cfg.switch))
        cases = build_cases(cfg, store, switch)
        wake: list[Waker] = [dispatcher]
        centre = cfg.centre
        if centre.url:
            link = CentreConfig(
                centre.url, centre.operator, Path(centre.client_cert),
                Path(centre.client_key), Path(centre.ca),
            )  # fmt: skip
            centre_dispatcher = CentreDispatcher(store, link)  # started with the workflow
            wake.append(centre_dispatcher)
        else:
            log.warning("no [centre] url: reports to the anti-fraud centre stay queued")
        if exemptions is not None:
            refresher = ExemptionRefresher(
                exemptions, FeedbackRepository(store), interval=cfg.feedback.refresh
            )
            await stack.enter_async_context(refresher)
        if centre.endpoint.listen:
            await stack.enter_async_context(centre_endpoint(centre, cases, store))
        if cfg.api.listen:
            limits = feedback_limits(cfg.feedback)
            server = api_server(
                cfg.api, cases, store, exemptions, limits, console=cfg.console, sources=sources
            )
            await stack.enter_async_context(server)
            log.info("HTTP API on %s (%d tokens)", cfg.api.listen, len(cfg.api.tokens))
        topic = f"{cfg.mqtt.topic_prefix}/cases/deadlines"
        workflow = Workflow(
            store, cases, interval=cfg.cases.interval, wake=wake, label_campaign=label_campaign,
            notices=build_notices(cfg, store, cases),
            status=functools.partial(dispatcher.set_state, topic),
        )  # fmt: skip
        if centre.url:
            workflow.singletons.append(centre_dispatcher)
        yield workflow


def centre_endpoint(centre: CentreSettings, cases: Cases, store: Store) -> CentreEndpoint:
    """The centre's inbound endpoint as the daemon serves it ([centre.endpoint])."""
    from pathlib import Path

    from gateway.centre import CentreEndpoint, EndpointConfig, StoreJournal
    from gateway.config_check import parse_hostport

    ep = centre.endpoint
    host, port = parse_hostport(ep.listen, "centre.endpoint.listen", listen=True)
    endpoint = EndpointConfig(
        Path(ep.cert), Path(ep.key), Path(ep.client_ca),
        host=host, port=port, max_connections=ep.max_connections,
        client_timeout=ep.client_timeout,
    )  # fmt: skip
    with _files_of("centre.endpoint (cert, key, client_ca)"):
        return CentreEndpoint(endpoint, cases, journal=StoreJournal(store))


@contextlib.contextmanager
def _files_of(keys: str) -> Iterator[None]:
    """A certificate or key file that cannot be used, reported with the keys that name it."""
    from gateway.centre import CentreConfigError

    try:
        yield
    except CentreConfigError as e:
        raise ConfigError(f"{keys}: {e}") from e


def api_server(
    api: ApiSettings,
    cases: Cases,
    store: Store,
    exemptions: ExemptionCache | None = None,
    feedback: FeedbackLimits | None = None,
    console: ConsoleSettings | None = None,
    sources: Sources | None = None,
) -> ApiServer:
    """The HTTP API as the daemon serves it ([api]: address, TLS, tokens, limits; [feedback]),
    with the console under /console unless [console] enabled = false (`sources`: what only the
    running daemon knows, for the live, campaigns and probes pages)."""
    from pathlib import Path

    from gateway.api import ApiConfig, ApiLimits, ApiServer, build_api
    from gateway.config_check import parse_hostport
    from gateway.registry import Registry

    host, port = parse_hostport(api.listen, "api.listen", listen=True)
    limits = ApiLimits(
        max_body=api.max_body, max_connections=api.max_connections,
        client_timeout=api.client_timeout, lookup_rate=api.lookup_rate,
        lookup_burst=api.lookup_burst,
    )  # fmt: skip
    tokens = {digest: (user, role) for digest, user, role in api.tokens}
    # the cases' registry: [registry] settings and the [cases] calendar (build_cases)
    registry = cases.registry if isinstance(cases.registry, Registry) else Registry(store)
    app: Any = build_api(
        cases, registry, store, tokens, limits=limits, exemptions=exemptions,
        feedback_limits=feedback,
    )  # fmt: skip
    if console is not None and console.enabled:
        from gateway.console import SessionLimits, with_console

        sessions = SessionLimits(
            console.session_idle, console.session_lifetime, console.max_sessions
        )
        app = with_console(
            app, sources=sources, limits=sessions, secure=bool(api.cert),
            client_timeout=api.client_timeout,
        )  # fmt: skip
    config = ApiConfig(
        host=host, port=port,
        cert=Path(api.cert) if api.cert else None,
        key=Path(api.key) if api.key else None, limits=limits,
    )  # fmt: skip
    return ApiServer(config, app)
