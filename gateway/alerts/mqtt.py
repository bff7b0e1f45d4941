"""MQTT alerts: the payloads subscribers receive and one broker connection that publishes them.

Topics (prefix `fraudgate` by default, see docs/mqtt.md):

    {prefix}/status          retained; {"state": "online", ...} on connect; the last will sets
                             {"state": "offline", ...} when the connection dies without a goodbye
    {prefix}/alerts/{kind}   one message per alert (kind: sms, fanout, complaint), QoS 1

Every alert message is the JSON object {"id", "kind", "created_at", ...Alert.payload}; `id` is
the alert's idempotency key: delivery is at-least-once (QoS 1), so consumers de-duplicate by it.

Payloads never carry personal data in the IIN/name sense: `screen_personal_data()` refuses an
alert whose payload has a key such as `iin` or `surname`, and masks IIN-like digit runs in its
free text; address fields (sender, recipient, CLI...) are published as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import re
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import aiomqtt
from aiomqtt.exceptions import MqttConnectError

from gateway.alerts.payloads import (
    complaint_alert_payload,
    fanout_alert_payload,
    iso_utc,
    mask_msisdn,
    sms_alert_payload,
)
from gateway.domain import Alert, AlertKind
from gateway.iin import iin_check_digit, is_valid_iin, mask_iin

log = logging.getLogger(__name__)

# -- errors -------------------------------------------------------------------------------------


class BrokerError(Exception):
    """Talking to the MQTT broker failed."""


class BrokerUnavailable(BrokerError):
    """The broker cannot be reached, refused the connection or the connection was lost: the
    alerts stay in the outbox and a later attempt may succeed."""


class BrokerAuthError(BrokerUnavailable):
    """The broker refused our credentials (bad username or password, or not authorised)."""


class BrokerTlsError(BrokerUnavailable):
    """The TLS handshake with the broker failed (certificate not trusted, wrong host name...)."""


class AlertRejected(ValueError):
    """This alert can never be published as it is (its payload is wrong): it is set aside in the
    outbox instead of being retried."""


class PersonalDataError(AlertRejected):
    """An alert payload holds personal data (an IIN, a person's name)."""


# -- personal data guard ------------------------------------------------------------------------

# Fields holding a telephone address: a sender, a recipient, a CLI, a suspect's number, a sender
# id (docs/mqtt.md, docs/mqtt-alert.schema.json). The address is what an alert is about, and is
# never screened: 0.21 % of random 12-digit numbers and 0.67 % of Ukrainian mobiles pass the IIN
# check, and a fraudster sending from such a number must not make its own alert disappear.
ADDRESS_KEYS = frozenset(
    {
        "source",
        "sender",
        "dest",
        "number",
        "numbers",
        "a_number",
        "complainant",
        "suspected_sender",
        "observed",
    }
)
# An IIN, or its first 11 digits (a forwarded text cut short), standing alone in a text.
_IIN_CANDIDATE = re.compile(r"(?<!\d)\d{11,12}(?!\d)")
_DIGITS_11 = re.compile(r"\d{11}")  # no IIN-like run without eleven digits in a row
# Our own record ids (gateway.ids: UUIDv7, 32 hex digits, or its dashed form). About one in ten
# thousand has twelve decimal digits between two letters that pass the IIN check: an id is not
# personal data, and masking it would break the look-up by id.
_RECORD_ID = re.compile(r"[0-9a-f]{32}|[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}")

# Keys that name personal data, compared with case, spaces, '_' and '-' removed.
PERSONAL_KEYS = frozenset(
    {
        "iin",
        "name",
        "surname",
        "patronymic",
        "firstname",
        "lastname",
        "middlename",
        "fullname",
        "givenname",
        "familyname",
        "fio",
        "иин",
        "жсн",
        "фио",
        "имя",
        "фамилия",
        "отчество",
        "аты",
        "тегі",
        "әкесініңаты",
        "атыжөні",
    }
)
# Words that make any key personal wherever they appear in it ("subscriber_iin", "iin_hash").
_PERSONAL_WORDS = frozenset({"iin", "surname", "patronymic", "fio", "иин", "жсн", "фио"})
_KEY_WORDS = re.compile(r"[^\W_]+")


@functools.lru_cache(maxsize=1024)  # a handful of distinct keys, on every alert
def _personal_key(key: str) -> bool:
    folded = re.sub(r"([a-zа-яё])([A-ZА-ЯЁ])", r"\1_\2", key).casefold()
    if re.sub(r"[\s_\-.]", "", folded) in PERSONAL_KEYS:
        return True
    return any(w in _PERSONAL_WORDS for w in _KEY_WORDS.findall(folded))


def _record_id(key: object, value: object) -> bool:
    """An id field (`id`, `…_id`) holding one of our record ids."""
    return (
        type(value) is str
        and isinstance(key, str)
        and (key == "id" or key.endswith("_id"))
        and _RECORD_ID.fullmatch(value) is not None
    )


def iin_like(digits: str) -> bool:
    """12 digits forming a valid IIN, or 11 digits that begin one (a birth date, the century
    digit and a check digit that exists: shared/domain/KAZAKHSTAN.md)."""
    if len(digits) == 11:
        check = iin_check_digit(digits)
        return check is not None and is_valid_iin(f"{digits}{check}")
    return is_valid_iin(digits)


def mask_iins(text: str) -> str:
    """`text` with every IIN-like run of 11 or 12 digits masked like an IIN (9001******17)."""
    return _IIN_CANDIDATE.sub(
        lambda m: mask_iin(m.group()) if iin_like(m.group()) else m.group(), text
    )


def screen_personal_data(payload: Mapping[str, object], path: str = "payload") -> dict[str, object]:
    """`payload` as it may be published (a copy; any JSON-like value, walked recursively).

    Address fields (ADDRESS_KEYS) and our record ids pass as they are; every other string is
    free text as far as this guard knows (a rule's description, a modem's error, a probe
    finding's story) and has its IIN-like digit runs masked: the alert goes out without them.
    Raises PersonalDataError for a key naming personal data (iin, name, surname...): only our
    own code writes keys, so that is a bug to fix, not a message to send; and for a number
    (not a string) that is a valid IIN, which cannot be masked without changing its type."""
    screened: dict[str, object] = {}
    for key, value in payload.items():
        if isinstance(key, str) and _personal_key(key):
            raise PersonalDataError(f"{path}.{key}: key {key!r} names personal data")
        if type(value) is str:  # the common case first, without building a path
            if key in ADDRESS_KEYS or not _DIGITS_11.search(value) or _record_id(key, value):
                screened[key] = value
            else:
                screened[key] = mask_iins(value)
        elif type(value) in (bool, float) or value is None or key in ADDRESS_KEYS:
            screened[key] = value
        else:
            screened[key] = _screen(value, f"{path}.{key}")
    return screened


def _screen(value: object, path: str) -> object:
    if type(value) is str:
        return mask_iins(value) if _DIGITS_11.search(value) else value
    if type(value) is dict or isinstance(value, Mapping):
        return screen_personal_data(value, path)
    if type(value) is list or type(value) is tuple:
        return [_screen(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, int) and not isinstance(value, bool) and is_valid_iin(str(value)):
        raise PersonalDataError(f"{path}: number is an IIN ({mask_iin(str(value))})")
    return value


def assert_no_personal_data(payload: Mapping[str, object], path: str = "payload") -> None:
    """Raise PersonalDataError unless `payload` goes out unchanged through
    screen_personal_data(): for the payload builders' tests, whose payloads must need no
    masking."""
    if screen_personal_data(payload, path) != payload:
        raise PersonalDataError(f"{path}: holds an IIN-like number outside the address fields")


# -- payloads: built in gateway.alerts.payloads, re-exported here -----------------------------


ENVELOPE_KEYS = ("id", "kind", "created_at")


def alert_message(alert: Alert) -> dict[str, object]:
    """The JSON object published for `alert`: {"id", "kind", "created_at", ...payload}.

    The payload goes through screen_personal_data() (IIN-like numbers in free text masked).
    Raises PersonalDataError (a key naming personal data) or AlertRejected (payload reuses an
    envelope key or is not JSON)."""
    payload = screen_personal_data(alert.payload)
    clash = [k for k in ENVELOPE_KEYS if k in payload]
    if clash:
        raise AlertRejected(f"alert {alert.id}: payload must not set {', '.join(clash)}")
    return {
        "id": alert.id,
        "kind": str(AlertKind(alert.kind).value),
        "created_at": iso_utc(alert.created_at),
        **payload,
    }


def encode_alert(alert: Alert) -> bytes:
    try:
        return json.dumps(alert_message(alert), ensure_ascii=False, allow_nan=False).encode()
    except (TypeError, ValueError) as e:
        if isinstance(e, AlertRejected):
            raise
        raise AlertRejected(f"alert {alert.id}: payload is not JSON: {e}") from e


# -- configuration --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MqttConfig:
    """Where and how to publish. With `tls` (implied by setting `tls_ca` or `tls_cert`), the
    broker's certificate is verified against `tls_ca` (the system's CAs when None); `tls_cert` +
    `tls_key` give a client certificate; `tls_insecure` skips the host name check only (never
    the chain)."""

    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = "fraudgate"
    username: str | None = None
    password: str | None = None
    tls: bool = False
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_insecure: bool = False
    topic_prefix: str = "fraudgate"
    qos: int = 1
    keepalive: int = 30
    timeout: float = 10.0  # seconds for the CONNACK and for each PUBACK

    def __post_init__(self) -> None:
        if not self.topic_prefix or any(c in self.topic_prefix for c in "#+\0"):
            raise ValueError(f"topic_prefix {self.topic_prefix!r}: must be non-empty, no # or +")
        if self.topic_prefix.startswith("/") or self.topic_prefix.endswith("/"):
            raise ValueError(f"topic_prefix {self.topic_prefix!r}: no leading or trailing '/'")
        if self.qos not in (1, 2):
            raise ValueError(f"qos {self.qos}: must be 1 or 2 (QoS 0 has no acknowledgement)")
        if not 0 < self.port < 65536:
            raise ValueError(f"port {self.port}: out of range")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        if self.keepalive < 1 or self.timeout <= 0:
            raise ValueError("keepalive and timeout must be positive")

    @property
    def use_tls(self) -> bool:
        return self.tls or self.tls_ca is not None or self.tls_cert is not None

    def check_tls_files(self) -> None:
        """Read the TLS files once (ValueError naming the key): a missing or broken file is a
        mistake to report at start, not a reason to fail every reconnection. Without tls_ca,
        the system's CA store is used (paho: SSLContext.load_default_certs())."""
        if not self.use_tls:
            return
        context = ssl.create_default_context()
        if self.tls_ca is not None:
            try:
                context.load_verify_locations(self.tls_ca)
            except (OSError, ssl.SSLError) as e:
                raise ValueError(
                    f"tls_ca {self.tls_ca}: not a readable PEM CA file ({e})"
                ) from None
        if self.tls_cert is not None:
            try:
                context.load_cert_chain(self.tls_cert, self.tls_key)
            except (OSError, ssl.SSLError) as e:
                raise ValueError(
                    f"tls_cert, tls_key: not a PEM certificate and its private key ({e})"
                ) from None

    @property
    def status_topic(self) -> str:
        return f"{self.topic_prefix}/status"

    def probe_topic(self, probe: str) -> str:
        """Retained health of one probe modem (docs/mqtt.md)."""
        return f"{self.topic_prefix}/probes/{probe}"

    def alert_topic(self, kind: AlertKind | str) -> str:
        return f"{self.topic_prefix}/alerts/{AlertKind(kind).value}"

    @property
    def where(self) -> str:
        return f"{'mqtts' if self.use_tls else 'mqtt'}://{self.host}:{self.port}"


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("fraudgate")
    except Exception:  # not installed as a distribution
        return "0+unknown"


_AUTH_CODES = {4, 5, 0x86, 0x87}  # 3.1.1: bad user name or password, not authorised; 5.0 too


# -- the connection -------------------------------------------------------------------------------


class AlertPublisher:
    """One connection to the broker (an async context manager; open a new one to reconnect).

    On connect it publishes the retained status {"state": "online", "since", "version"} and
    registers a retained last will {"state": "offline"}; leaving the context normally publishes
    the retained offline status itself. `publish()` returns once the broker acknowledged the
    alert (PUBACK for QoS 1) and raises BrokerUnavailable as soon as the connection is lost."""

    def __init__(
        self,
        config: MqttConfig,
        *,
        version: str | None = None,
        max_inflight: int = 100,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.version = version or _version()
        self._max_inflight = max_inflight
        self._clock = clock
        self._client: aiomqtt.Client | None = None
        self._watch: asyncio.Task[None] | None = None
        self._lost: BaseException | None = None
        self.since: float | None = None

    def _status(
        self, state: str, *, since: float | None = None, reason: str | None = None
    ) -> bytes:
        body: dict[str, object] = {"state": state}
        if since is not None:
            body["since"] = iso_utc(since)
        body["version"] = self.version
        body["client_id"] = self.config.client_id
        if reason is not None:
            body["reason"] = reason
        return json.dumps(body).encode()

    def _make_client(self) -> aiomqtt.Client:
        cfg = self.config
        tls_params = None
        if cfg.use_tls:
            tls_params = aiomqtt.TLSParameters(
                ca_certs=cfg.tls_ca,
                certfile=cfg.tls_cert,
                keyfile=cfg.tls_key,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        will = aiomqtt.Will(
            cfg.status_topic,
            self._status("offline", reason="connection lost"),
            qos=1,
            retain=True,
        )
        client = aiomqtt.Client(
            cfg.host,
            cfg.port,
            identifier=cfg.client_id,
            username=cfg.username,
            password=cfg.password,
            will=will,
            clean_session=True,
            keepalive=cfg.keepalive,
            timeout=cfg.timeout,
            tls_params=tls_params,
            tls_insecure=cfg.tls_insecure if cfg.use_tls else None,
            max_inflight_messages=self._max_inflight,
            logger=logging.getLogger("gateway.alerts.mqtt.client"),
        )
        client.pending_calls_threshold = self._max_inflight * 10  # many in flight is normal here
        return client

    async def __aenter__(self) -> Self:
        cfg = self.config
        client = self._make_client()
        try:
            await client.__aenter__()
        except MqttConnectError as e:
            code = getattr(e.rc, "value", e.rc)
            if code in _AUTH_CODES:
                who = f"user {cfg.username!r}" if cfg.username else "anonymous clients"
                raise BrokerAuthError(
                    f"MQTT broker {cfg.where} refused the connection of {who}: {e}"
                ) from e
            raise BrokerUnavailable(f"MQTT broker {cfg.where} refused the connection: {e}") from e
        except aiomqtt.MqttError as e:
            text = str(e)
            if "SSL" in text or "certificate" in text.lower() or "handshake" in text.lower():
                raise BrokerTlsError(f"TLS with MQTT broker {cfg.where} failed: {text}") from e
            raise BrokerUnavailable(f"MQTT broker {cfg.where} unreachable: {text}") from e
        except OSError as e:  # certificate files unreadable, ...
            raise BrokerUnavailable(f"MQTT broker {cfg.where}: {e}") from e
        self._client = client
        self._lost = None
        self._watch = asyncio.create_task(self._watch_connection(client), name="mqtt-watch")
        self.since = self._clock()
        try:
            await self._send(
                cfg.status_topic,
                self._status("online", since=self.since),
                retain=True,
            )
        except BaseException:
            await self._teardown(graceful=False)
            raise
        log.debug("connected to MQTT broker %s as %s", cfg.where, cfg.client_id)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._teardown(graceful=True)

    async def _teardown(self, *, graceful: bool) -> None:
        client = self._client
        if client is None:
            return
        still_up = self.connected
        self._client = None
        if graceful and still_up:
            with contextlib.suppress(BrokerError, asyncio.TimeoutError):
                await asyncio.wait_for(
                    self._send(
                        self.config.status_topic,
                        self._status("offline", since=self._clock(), reason="shutdown"),
                        retain=True,
                        client=client,
                    ),
                    timeout=self.config.timeout,
                )
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        with contextlib.suppress(aiomqtt.MqttError, OSError):
            await client.__aexit__(None, None, None)

    async def _watch_connection(self, client: aiomqtt.Client) -> None:
        """Ends when the connection is lost (we subscribe to nothing: no message arrives)."""
        try:
            async for _ in client.messages:
                pass
        except aiomqtt.MqttError as e:
            self._lost = e.__cause__ or e

    @property
    def connected(self) -> bool:
        return self._client is not None and self._watch is not None and not self._watch.done()

    async def wait_lost(self) -> None:
        """Return when the connection to the broker is lost."""
        if self._watch is not None:
            await asyncio.shield(self._watch)

    def lost_error(self) -> BrokerUnavailable:
        """The error telling that (and why) the connection is gone."""
        return BrokerUnavailable(
            f"connection to MQTT broker {self.config.where} lost: {self._lost or 'closed'}"
        )

    async def publish(self, alert: Alert) -> None:
        """Publish `alert` on {prefix}/alerts/{kind} and wait for the broker's acknowledgement.

        Raises AlertRejected / PersonalDataError before sending anything when the payload may
        not be published, BrokerUnavailable when the connection is lost or times out."""
        body = encode_alert(alert)
        await self._send(self.config.alert_topic(alert.kind), body, retain=False)

    async def publish_state(self, topic: str, payload: dict[str, object]) -> None:
        """Publish a retained state document (e.g. a probe's health) on `topic`; same checks
        and acknowledgement as alerts."""
        screened = screen_personal_data(payload)
        body = json.dumps(screened, ensure_ascii=False, separators=(",", ":")).encode()
        await self._send(topic, body, retain=True)

    async def _send(
        self, topic: str, body: bytes, *, retain: bool, client: aiomqtt.Client | None = None
    ) -> None:
        client = client or self._client
        watch = self._watch
        if client is None or watch is None or watch.done():
            raise self.lost_error()
        task = asyncio.ensure_future(
            client.publish(topic, body, qos=self.config.qos, retain=retain)
        )
        try:
            done, _ = await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if task in done:
            try:
                task.result()
            except aiomqtt.MqttError as e:
                raise BrokerUnavailable(
                    f"publishing to MQTT broker {self.config.where} failed: {e}"
                ) from e
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
            await task
        raise self.lost_error()


__all__ = [
    "AlertPublisher",
    "AlertRejected",
    "BrokerAuthError",
    "BrokerError",
    "BrokerTlsError",
    "BrokerUnavailable",
    "MqttConfig",
    "PersonalDataError",
    "alert_message",
    "assert_no_personal_data",
    "complaint_alert_payload",
    "encode_alert",
    "fanout_alert_payload",
    "iin_check_digit",
    "iin_like",
    "is_valid_iin",
    "iso_utc",
    "mask_iins",
    "mask_msisdn",
    "screen_personal_data",
    "sms_alert_payload",
]
