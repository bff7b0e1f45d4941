"""The daemon's configuration: one TOML file plus FRAUDGATE_ environment overrides, validated at
start into one typed object. An error names the key (dotted path) and the reason.

Environment overrides use the dotted key with `__` for the dots, upper-case:
    FRAUDGATE_GATEWAY__MODE=enforce        -> gateway.mode = "enforce"
    FRAUDGATE_STORE__URL=postgresql+asyncpg://...
    FRAUDGATE_MQTT__PORT=8883              (parsed as TOML values where they parse: 8883 is int)
    FRAUDGATE_SMSC__0__PASSWORD=...        (array items by index)

Only names of that form (a section, `__`, a key) are overrides; a key or section they name that
does not exist is refused like one in the file. Other FRAUDGATE_ variables belong to other
tools or commands (FRAUDGATE_OPERATOR for `fraudgate cases`, FRAUDGATE_PG_BINDIR for the tests)
and are ignored, with one debug line naming them; one that looks like a misspelt override
(FRAUDGATE_SWITCH_TOKEN, the name docs once gave; FRAUDGATE_<SECTION>_<KEY> after a section of
the file) is also named in a warning with the override meant.
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.alerts.settings import MqttSettings, parse_mqtt
from gateway.api.settings import ApiSettings, parse_api
from gateway.calls.settings import CallsSettings, parse_calls
from gateway.cases.settings import CasesSettings, parse_cases
from gateway.centre.config import CentreSettings, parse_centre
from gateway.cli_settings import CliSettings, parse_cli
from gateway.config_check import ConfigError, Table
from gateway.console.settings import ConsoleSettings, parse_console
from gateway.detect.campaign_limits import CampaignLimits, parse_campaigns
from gateway.detect.velocity import VelocityLimits
from gateway.domain import Route, Thresholds
from gateway.esme_settings import parse_esme
from gateway.feedback.settings import FeedbackSettings, parse_feedback
from gateway.metrics.settings import MetricsSettings, parse_metrics
from gateway.probes.settings import ProbesConfig, parse_probes
from gateway.proxy.settings import ProxySettings, parse_proxy
from gateway.registry.settings import RegistrySettings, parse_registry
from gateway.retention.settings import RetentionSettings, parse_retention
from gateway.shared.settings import SharedSettings, parse_shared
from gateway.switch.config import SwitchSettings, parse_switch
from smsc.client import EsmeConfig
from smsc.constants import Status
from smsc.session import BindType

log = logging.getLogger("fraudgate.config")

ENV_PREFIX = "FRAUDGATE_"
PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_DIR / "config" / "fraudgate.toml"


@dataclass
class SmscLink:
    esme: EsmeConfig
    route: Route
    forward: bool = False  # inline: submit accepted MO onward on this bind (docs/inline.md)
    forward_timeout: float = 3.0  # seconds for the onward submit_sm_resp (osmo-msc waits 5 s)
    ia5_is_gsm: bool = False  # data_coding 1 carries unpacked GSM 03.38 (osmo-msc 1.9)


@dataclass
class GatewayConfig:
    mode: str = "monitor"  # "monitor": acknowledge all, record; "enforce": reject blocked ones
    block_status: int = Status.ESME_RX_R_APPN  # 0x66: permanent, no retry (smpp/NOTES.md)
    store_error_status: int = Status.ESME_RMSGQFUL  # 0x14: the SMSC retries later
    forward_error_status: int = Status.ESME_RMSGQFUL  # forward mode: onward submit unanswered
    data_dir: Path = PROJECT_DIR / "var"
    store_url: str = ""  # default: SQLite under data_dir
    text_retention_days: float = 30.0
    complaint_numbers: tuple[str, ...] = ("1490",)
    thresholds: Thresholds = field(default_factory=Thresholds)
    rules_dir: Path = PROJECT_DIR / "config" / "rules"
    model: Path | None = None
    classifier_weight: float = 0.5  # a classifier finding scores p(fraud) x this
    campaigns: CampaignLimits | None = field(default_factory=CampaignLimits)  # None: off
    campaigns_save_every: float = 60.0  # seconds between snapshots of the campaign state
    velocity: VelocityLimits = field(default_factory=VelocityLimits)
    reassembly_timeout: float = 30.0
    batch_max: int = 200  # SMS per database transaction (group commit)
    batch_delay: float = 0.002  # seconds to wait for more SMS before committing a batch
    commit_timeout: float = 10.0  # a batch not committed by then is answered for retry (0x14)
    redelivery_window: float = 600.0  # seconds a redelivered SMS keeps its first id
    smsc: list[SmscLink] = field(default_factory=list)
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    probes: ProbesConfig = field(default_factory=ProbesConfig)
    cases: CasesSettings = field(default_factory=CasesSettings)
    # kind "none": no switch, block actions wait (retried once configured); docs/switch.md
    switch: SwitchSettings = field(default_factory=SwitchSettings)
    centre: CentreSettings = field(default_factory=CentreSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)  # docs/console.md
    feedback: FeedbackSettings = field(default_factory=FeedbackSettings)
    cli: CliSettings = field(default_factory=CliSettings)  # [cli.users]: docs/cases.md
    registry: RegistrySettings = field(default_factory=RegistrySettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)  # docs/retention.md
    metrics: MetricsSettings = field(default_factory=MetricsSettings)  # docs/operations.md
    shared: SharedSettings = field(default_factory=SharedSettings)  # several nodes: Redis
    proxy: ProxySettings = field(default_factory=ProxySettings)  # A2P proxy: docs/proxy.md
    calls: CallsSettings = field(default_factory=CallsSettings)  # CDRs: docs/calls.md

    @property
    def enforcing(self) -> bool:
        return self.mode == "enforce"

    @property
    def database_url(self) -> str:
        return self.store_url or f"sqlite+aiosqlite:///{self.data_dir / 'fraudgate.db'}"


def _env_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # a bare string


def _override_path(name: str) -> list[str] | None:
    """The key path FRAUDGATE_<SECTION>__<KEY>[__<KEY>...] names; None for other names."""
    parts = name.removeprefix(ENV_PREFIX).split("__")
    if len(parts) < 2 or not all(parts):
        return None
    return [p.lower() for p in parts]


def apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    ignored: list[str] = []
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        path = _override_path(name)
        if path is None:
            ignored.append(name)
            continue
        _override(data, name, path, raw)
    if ignored:  # names only: a value may be a secret
        log.debug(
            "not configuration overrides (FRAUDGATE_<SECTION>__<KEY>): %s", ", ".join(ignored)
        )
    for name in ignored:
        meant = _meant(name, data)
        if meant:
            log.getChild("env").warning("%s is not read: the override is %s", name, meant)
    return data


# Names the documentation once gave that are not overrides (docs/switch.md).
RENAMED = {"FRAUDGATE_SWITCH_TOKEN": "FRAUDGATE_SWITCH__TOKEN"}


def _meant(name: str, data: Mapping[str, Any]) -> str:
    """The override `name` was probably meant to be, "" if none: a renamed variable, or
    FRAUDGATE_<SECTION>_<KEY> with a single underscore after a section of the file."""
    if name in RENAMED:
        return RENAMED[name]
    section, _, key = name.removeprefix(ENV_PREFIX).partition("_")
    if key and not key.startswith("_") and isinstance(data.get(section.lower()), dict):
        return f"{ENV_PREFIX}{section}__{key}"
    return ""


def _override(data: dict[str, Any], name: str, path: list[str], raw: str) -> None:
    node: Any = data
    for i, part in enumerate(path[:-1]):
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"{name}: no item {part} in {'.'.join(path[:i])}")
            node = node[int(part)]
        else:
            node = node.setdefault(part, {})
        if not isinstance(node, dict | list):
            raise ConfigError(f"{name}: {'.'.join(path[: i + 1])} is not a table")
    if isinstance(node, list):
        raise ConfigError(f"{name}: give an item index after {'.'.join(path[:-1])}")
    node[path[-1]] = _env_value(raw)


def _smsc(t: Table) -> SmscLink:
    try:
        bind = BindType(t.get("bind", str, "receiver"))
        route = Route(t.get("route", str, "local"))
    except ValueError as exc:
        raise ConfigError(f"{t.path}: {exc}") from exc
    if bind is BindType.TRANSMITTER:
        raise ConfigError(
            f"{t.key('bind')}: a transmitter receives nothing; use receiver or transceiver"
        )
    forward = t.get("forward", bool, False)
    if forward and bind is not BindType.TRANSCEIVER:
        raise ConfigError(
            f"{t.key('forward')}: forwarding submits onward on the same bind: "
            f'it needs bind = "transceiver"'
        )
    forward_timeout = t.number("forward_timeout", 3.0, minimum=0.1)
    ia5_is_gsm = t.get("ia5_is_gsm", bool, False)
    esme = parse_esme(t, bind)
    t.done()
    return SmscLink(esme, route, forward, forward_timeout, ia5_is_gsm)


def _store_url(t: Table) -> str:
    """[store] url: "" (SQLite under data_dir) or a URL of a supported database."""
    from sqlalchemy.exc import ArgumentError

    from gateway.store.urls import display_url, normalize_url

    url = t.get("url", str, "")
    t.done()
    if url:
        try:
            normalize_url(url)
        except (ArgumentError, ValueError) as exc:
            raise ConfigError(f"{t.key('url')}: {display_url(url)}: {exc}") from None
    return url


def from_toml(data: dict[str, Any], *, base: Path = PROJECT_DIR) -> GatewayConfig:
    root = Table(data, "")
    cfg = GatewayConfig()
    _gateway(root.table("gateway"), cfg, base)
    cfg.store_url = _store_url(root.table("store"))
    _detectors(root.table("detectors"), cfg, base)
    cfg.campaigns, cfg.campaigns_save_every = parse_campaigns(root.table("campaigns"))
    cfg.smsc = [_smsc(t) for t in root.tables("smsc")]
    names = [s.esme.name for s in cfg.smsc]
    for i, n in enumerate(names):
        if n in names[:i]:
            raise ConfigError(f"smsc[{i}].name: {n!r} is used twice")
    cfg.mqtt = parse_mqtt(root.table("mqtt"))
    cfg.probes = parse_probes(root.table("probes"), base)
    cfg.cases = parse_cases(root.table("cases"))
    sw = root.table("switch")
    cfg.switch = parse_switch(sw)
    sw.done()
    cfg.centre = parse_centre(root.table("centre"), base)
    cfg.api = parse_api(root.table("api"), base)
    cfg.console = parse_console(root.table("console"))
    cfg.feedback = parse_feedback(root.table("feedback"))
    cfg.cli = parse_cli(root.table("cli"))
    cfg.registry = parse_registry(root.table("registry"))
    cfg.retention = parse_retention(root.table("retention"))
    cfg.metrics = parse_metrics(root.table("metrics"))
    cfg.shared = parse_shared(root.table("shared"))
    cfg.proxy = parse_proxy(root.table("proxy"), base)
    cfg.calls = parse_calls(root.table("calls"), base)
    root.done()
    return cfg


def _gateway(g: Table, cfg: GatewayConfig, base: Path) -> None:
    """[gateway]: the mode, the answers, the data directory, batching."""
    cfg.mode = g.get("mode", str, "monitor")
    if cfg.mode not in ("monitor", "enforce"):
        raise ConfigError(f"gateway.mode: 'monitor' or 'enforce', got {cfg.mode!r}")
    cfg.block_status = g.integer("block_status", cfg.block_status, minimum=1, maximum=0xFFFFFFFF)
    cfg.store_error_status = g.integer(
        "store_error_status", cfg.store_error_status, minimum=1, maximum=0xFFFFFFFF
    )
    cfg.forward_error_status = g.integer(
        "forward_error_status", cfg.forward_error_status, minimum=1, maximum=0xFFFFFFFF
    )
    cfg.data_dir = base / g.get("data_dir", str, "var")
    cfg.text_retention_days = g.number("text_retention_days", 30.0)
    numbers = g.get("complaint_numbers", list, list(cfg.complaint_numbers))
    if not all(isinstance(n, str) and n.isdigit() for n in numbers):
        raise ConfigError('gateway.complaint_numbers: a list of digit strings, e.g. ["1490"]')
    cfg.complaint_numbers = tuple(numbers)
    cfg.reassembly_timeout = g.number("reassembly_timeout", 30.0, minimum=0.1)
    cfg.batch_max = g.integer("batch_max", cfg.batch_max, minimum=1)
    cfg.batch_delay = g.number("batch_delay", cfg.batch_delay)
    cfg.commit_timeout = g.number("commit_timeout", cfg.commit_timeout, minimum=0.1)
    cfg.redelivery_window = g.number("redelivery_window", cfg.redelivery_window, minimum=1.0)
    g.done()


def _detectors(d: Table, cfg: GatewayConfig, base: Path) -> None:
    """[detectors]: rules, the model, thresholds, [detectors.velocity]."""
    cfg.rules_dir = base / d.get("rules_dir", str, "config/rules")
    model = d.get("model", str, "")
    cfg.model = base / model if model else None
    cfg.classifier_weight = d.number("classifier_weight", cfg.classifier_weight, minimum=0.01)
    if cfg.classifier_weight > 1:
        raise ConfigError("detectors.classifier_weight: a factor in (0, 1]")
    th = d.table("thresholds")
    cfg.thresholds = Thresholds(flag=th.number("flag", 0.5), block=th.number("block", 0.8))
    if not 0 < cfg.thresholds.flag <= cfg.thresholds.block <= 1:
        raise ConfigError("detectors.thresholds: need 0 < flag <= block <= 1")
    th.done()
    v = d.table("velocity")
    cfg.velocity = VelocityLimits(
        window=v.number("window", 60.0, minimum=1.0),
        sender_messages=v.integer("sender_messages", 60, minimum=1),
        sender_recipients=v.integer("sender_recipients", 30, minimum=1),
        dest_messages=v.integer("dest_messages", 20, minimum=1),
        smsc_messages=v.integer("smsc_messages", 0),
        max_keys=v.integer("max_keys", 1_000_000, minimum=1000),
        exempt_senders=frozenset(v.get("exempt_senders", list, [])),
    )
    v.done()
    d.done()


def load(path: Path | None, environ: Mapping[str, str] | None = None) -> GatewayConfig:
    """Read the file (or only the environment when path is None), apply overrides, validate."""
    environ = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    where = "environment"
    if path is not None:
        where = str(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return from_toml(apply_env(data, environ))
    except ConfigError as exc:
        raise ConfigError(f"{where}: {_blame(str(exc), environ)}") from exc


def _blame(message: str, environ: Mapping[str, str]) -> str:
    """`message` ("mqtt.hostt: unknown key") naming the variable that set its key (or a key in
    its section), if one did: a key not in the file is otherwise hard to find."""
    key = message.split(":", 1)[0]
    for name in environ:
        path = _override_path(name) if name.startswith(ENV_PREFIX) else None
        dotted = _dotted(path) if path else ""
        if dotted == key or dotted.startswith((f"{key}.", f"{key}[")):
            return f"{message} (set by {name})"
    return message


def _dotted(path: list[str]) -> str:
    """A key path as errors write it: smsc.0.password -> smsc[0].password."""
    return "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in path).removeprefix(".")
