"""MQTT alerts against a real mosquitto broker, subscribed to with aiomqtt (no mocks)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiomqtt
import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from referencing import Registry, Resource

from gateway.alerts.dispatcher import OutboxDispatcher
from gateway.alerts.mqtt import (
    AlertPublisher,
    AlertRejected,
    BrokerAuthError,
    BrokerTlsError,
    BrokerUnavailable,
    MqttConfig,
    PersonalDataError,
    alert_message,
    assert_no_personal_data,
    complaint_alert_payload,
    fanout_alert_payload,
    iin_check_digit,
    is_valid_iin,
    iso_utc,
    mask_msisdn,
    screen_personal_data,
    sms_alert_payload,
)
from gateway.config import from_toml
from gateway.domain import (
    Alert,
    AlertKind,
    Complaint,
    Inspected,
    Reason,
    Route,
    SmsEvent,
    Thresholds,
    combine,
)
from gateway.store import Store, sqlite_url
from gateway.wiring import mqtt_config
from smsc.backoff import Backoff

if TYPE_CHECKING:
    from fixtures_services import MosquittoBroker, PostgresServer, TlsMaterial


SCHEMA_PATH = Path(__file__).resolve().parents[1] / "docs" / "mqtt-alert.schema.json"
T0 = 1_800_000_000.0

# -- schema ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return loaded


@pytest.fixture(scope="module")
def alert_validator(schema: dict[str, Any]) -> Draft202012Validator:
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


@pytest.fixture(scope="module")
def status_validator(schema: dict[str, Any]) -> Draft202012Validator:
    registry: Registry[Any] = Registry().with_resource(
        schema["$id"], Resource.from_contents(schema)
    )
    return Draft202012Validator({"$ref": schema["$id"] + "#/$defs/status"}, registry=registry)


# -- helpers --------------------------------------------------------------------------------------


@dataclass
class Received:
    topic: str
    body: dict[str, Any]
    retain: bool
    qos: int
    at: float = field(default_factory=time.time)  # when the subscriber got it


class Subscriber:
    """An aiomqtt subscriber in a background task that reconnects after a broker outage and
    collects every message. `persistent`: a fixed client id with clean_session=False, so the
    broker queues QoS 1 messages for it while it is away."""

    def __init__(
        self,
        port: int,
        topics: Iterable[str] = ("fraudgate/#",),
        *,
        persistent: bool = False,
        **client_options: Any,
    ) -> None:
        self.port = port
        self.topics = list(topics)
        self.persistent = persistent
        self.client_id = f"test-sub-{uuid.uuid4().hex[:8]}"
        self.options = client_options
        self.received: list[Received] = []
        self.subscribed = asyncio.Event()
        self.connections = 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Subscriber:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self.subscribed.wait(), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while True:
            try:
                async with aiomqtt.Client(
                    "127.0.0.1",
                    self.port,
                    identifier=self.client_id,
                    clean_session=not self.persistent,
                    **self.options,
                ) as client:
                    self.connections += 1
                    for topic in self.topics:
                        await client.subscribe(topic, qos=1)
                    self.subscribed.set()
                    async for message in client.messages:
                        assert isinstance(message.payload, bytes)
                        self.received.append(
                            Received(
                                str(message.topic),
                                json.loads(message.payload),
                                message.retain,
                                message.qos,
                            )
                        )
            except aiomqtt.MqttError:
                await asyncio.sleep(0.1)

    def alerts(self) -> list[Received]:
        return [r for r in self.received if "/alerts/" in r.topic]

    def statuses(self) -> list[Received]:
        return [r for r in self.received if r.topic.endswith("/status")]


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0, what: str = ""
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        await asyncio.sleep(0.05)


def flagged_sms(i: int, *, at: float | None = None) -> Inspected:
    sms = SmsEvent(
        source="KASPI",
        dest=f"7701{i:07d}",
        text="Ваша карта заблокирована",
        smsc="smsc-1",
        route=Route.INTERNATIONAL,
        received_at=T0 + i if at is None else at,
        id=f"sms-{uuid.uuid4().hex[:12]}-{i}",
    )
    verdict = combine(
        [
            Reason("content", "content.ru.card_blocked", 0.7, "card blocked pretext"),
            Reason("sender", "sender.spoofed_bank", 0.6, "bank sender id from abroad"),
        ],
        Thresholds(),
    )
    alert = Alert(
        AlertKind.SMS_VERDICT, sms_alert_payload(sms, verdict), created_at=sms.received_at
    )
    return Inspected(sms, verdict, [alert])


def config(port: int, **overrides: Any) -> MqttConfig:
    options: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "client_id": f"gw-{uuid.uuid4().hex[:8]}",
        "timeout": 5.0,
        "keepalive": 5,
    }
    options.update(overrides)
    return MqttConfig(**options)


def dispatcher(store: Store, cfg: MqttConfig, **options: Any) -> OutboxDispatcher:
    options.setdefault("poll_interval", 0.5)
    options.setdefault("backoff", Backoff(initial=0.05, cap=0.4))
    return OutboxDispatcher(store, cfg, **options)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    st = await Store.open(sqlite_url(tmp_path / "data"))
    await st.migrate()
    try:
        yield st
    finally:
        await st.close()


# -- the personal-data guard, masks, payloads (no broker) -----------------------------------------

VALID_IINS = [
    "900101300017",
    "850515400012",
    "000701500013",
    "051231600017",
    "900101300811",  # via the second weights
    "850515400306",
    "000701500400",
]


@pytest.mark.parametrize("iin", VALID_IINS)
def test_valid_iins_are_recognised(iin: str) -> None:
    assert is_valid_iin(iin)


def test_iin_check_digit_rules() -> None:
    assert iin_check_digit("90010130001") == 7
    assert iin_check_digit("90010130081") == 1  # first pass gives 10, second pass 1
    assert iin_check_digit("90010130080") is None  # no valid check digit exists
    assert not is_valid_iin("821214240092")  # wrong check digit
    assert not is_valid_iin("900101300018")
    assert not is_valid_iin("901301300017")  # month 13: not a birth date
    assert not is_valid_iin("90010170001" + str(iin_check_digit("90010170001") or 0))  # digit 7
    assert not is_valid_iin("77011234567")  # an MSISDN is 11 digits
    assert not is_valid_iin("９００１０１３０００１７")  # fullwidth digits are not an IIN


@pytest.mark.parametrize(
    "payload",
    [
        {"iin": "x"},
        {"IIN": "x"},
        {"subscriber_iin": "x"},
        {"subscriberIin": "x"},
        {"name": "Айгүл"},
        {"Surname": "Ахметова"},
        {"patronymic": "x"},
        {"first_name": "x"},
        {"last-name": "x"},
        {"full name": "x"},
        {"ФИО": "x"},
        {"ИИН": "x"},
        {"reasons": [{"detector": "x", "surname": "y"}]},
        {"value": 900101300811},  # a number cannot be masked without changing its type
        {"nested": {"deeper": [{"count": 850515400306}]}},
    ],
)
def test_personal_data_is_refused(payload: dict[str, Any]) -> None:
    with pytest.raises(PersonalDataError):
        screen_personal_data(payload)
    alert = Alert(AlertKind.SMS_VERDICT, payload, created_at=T0)
    with pytest.raises(AlertRejected):
        alert_message(alert)


@pytest.mark.parametrize(
    ("payload", "masked"),
    [
        ({"note": "ИИН 900101300017 в тексте"}, "ИИН 9001******17 в тексте"),
        ({"reasons": [{"description": "client 850515400306"}]}, "client 8505******06"),
        ({"nested": {"deeper": ["ok", "000701500400"]}}, "0007******00"),
        # the first 11 digits of an IIN, as a forwarded text cut it
        ({"description": "от Aigerim Tes 90010140100 пришло"}, "от Aigerim Tes 9001*****00 пришло"),
        ({"error": "+CMS ERROR: 900101300811"}, "+CMS ERROR: 9001******11"),
        ({"message_id": "x900101300017"}, "x9001******17"),  # not one of our ids: screened
        ({"message_id": "01a20ba2b900101300017c2cae8042ff0"}, "b9001******17c"),  # 33 hex digits
        ({"text": "01a20ba2b900101300017c2cae8042ff"}, "b9001******17c"),  # not an id field
    ],
)
def test_iins_in_free_text_are_masked_and_the_alert_kept(
    payload: dict[str, Any], masked: str
) -> None:
    body = json.dumps(alert_message(Alert(AlertKind.SMS_VERDICT, payload, created_at=T0)))
    assert masked in json.dumps(screen_personal_data(payload), ensure_ascii=False)
    for iin in ("900101300017", "850515400306", "000701500400", "90010140100", "900101300811"):
        assert iin not in body
    with pytest.raises(PersonalDataError):  # the strict check for our own payload builders
        assert_no_personal_data(payload)


UKRAINIAN_IIN_SHAPED = "380501166299"  # +380 50 116 6299 (Vodafone UA) passes the IIN check


@pytest.mark.parametrize(
    "payload",
    [
        {"sender": "KASPI", "source": "77011234567", "rule_ids": ["sender.name_spoof"]},
        {"description": "BIN 990540000016 is a company", "count": 12},
        {"message_id": "821214240092", "score": 0.9},  # 12 digits, not a valid IIN
        # a record id (UUIDv7 hex) whose digits between two letters pass the IIN check: seen
        # in CI as a lost alert ("payload.message_id: value holds an IIN")
        {"message_id": "01a20ba2b900101300017c2cae8042ff"},
        {"text": "код 1234, счёт 1234567890123456"},
        {"description": "номер 77011234567890"},  # 14 digits: no IIN stands alone in them
        {"detector": "content", "rule_id": "x", "smsc": "name-server-1"},
        # addresses are published as they are, whatever their digits look like
        {"source": "900101300017", "dest": "7701***4567"},
        {"sender": UKRAINIAN_IIN_SHAPED, "count": 40},
        {"suspected_sender": UKRAINIAN_IIN_SHAPED, "complainant": "7707***4567"},
        {"observed": "+900101300017", "number": "900101300017", "a_number": "+380501166299"},
        {"numbers": ["9001***0017"]},
    ],
)
def test_ordinary_payloads_pass(payload: dict[str, Any]) -> None:
    assert_no_personal_data(payload)
    assert screen_personal_data(payload) == payload


def test_masks() -> None:
    assert mask_msisdn("77011234567") == "7701***4567"
    assert mask_msisdn("+77011234567") == "+7701***4567"
    assert mask_msisdn("1414") == "***"
    assert mask_msisdn("123456") == "12***56"


def test_envelope_keys_are_reserved() -> None:
    with pytest.raises(AlertRejected, match="must not set"):
        alert_message(Alert(AlertKind.FANOUT, {"id": "other"}, created_at=T0))


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="qos"):
        MqttConfig(qos=0)
    with pytest.raises(ValueError, match="topic_prefix"):
        MqttConfig(topic_prefix="fraud/#")
    with pytest.raises(ValueError, match="tls_cert"):
        MqttConfig(tls=True, tls_cert="c.pem")
    cfg = MqttConfig(topic_prefix="kz/fraudgate")
    assert cfg.alert_topic(AlertKind.COMPLAINT) == "kz/fraudgate/alerts/complaint"
    assert cfg.status_topic == "kz/fraudgate/status"


def test_payload_builders_match_the_schema(alert_validator: Draft202012Validator) -> None:
    item = flagged_sms(1)
    complaint = Complaint("77071234567", "forwarded", T0, item.sms.id, "KASPI")
    alerts = [
        item.alerts[0],
        Alert(AlertKind.FANOUT, fanout_alert_payload("77019998877", 60.0, 120, 118), T0),
        Alert(AlertKind.COMPLAINT, complaint_alert_payload(complaint), T0),
    ]
    for alert in alerts:
        alert_validator.validate(alert_message(alert))
    body = alert_message(alerts[0])
    assert body["dest"] == "7701***0001" and body["created_at"] == iso_utc(T0 + 1)
    assert iso_utc(T0) == "2027-01-15T08:00:00.000Z"
    # The schema refuses what must not go out: an unmasked number, an unknown field.
    assert not alert_validator.is_valid({**body, "dest": "77010000001"})
    assert not alert_validator.is_valid({**body, "text": "Ваша карта заблокирована"})
    assert not alert_validator.is_valid({**body, "kind": "fanout"})


# -- publishing to a real broker ------------------------------------------------------------------


async def test_alerts_are_published_once_on_notify_and_match_the_schema(
    mosquitto: MosquittoBroker,
    store: Store,
    alert_validator: Draft202012Validator,
    status_validator: Draft202012Validator,
) -> None:
    cfg = config(mosquitto.port)
    # poll_interval far beyond the test's waits: only notify() can make the alerts go out fast
    d = dispatcher(store, cfg, poll_interval=60.0)
    async with Subscriber(mosquitto.port) as sub:
        async with d:
            await wait_until(lambda: d.connected, what="dispatcher connected")
            item = flagged_sms(1)
            complaint = Complaint("77071234567", "forwarded text", T0 + 2, item.sms.id, "KASPI")
            item.complaint = complaint
            item.alerts += [
                Alert(AlertKind.FANOUT, fanout_alert_payload("KASPI", 60.0, 250, 240), T0 + 1),
                Alert(AlertKind.COMPLAINT, complaint_alert_payload(complaint), T0 + 2),
            ]
            await store.record([item])
            started = time.monotonic()
            d.notify()
            await wait_until(lambda: len(sub.alerts()) == 3, 5, "3 alerts")
            assert time.monotonic() - started < 3
            await wait_until(lambda: d.published == 3, 5, "marked sent")
            await asyncio.sleep(0.3)  # anything doubled would have arrived by now

        by_kind = {r.body["kind"]: r for r in sub.alerts()}
        assert {r.topic for r in sub.alerts()} == {
            "fraudgate/alerts/sms",
            "fraudgate/alerts/fanout",
            "fraudgate/alerts/complaint",
        }
        for received in sub.alerts():
            alert_validator.validate(received.body)
            assert received.qos == 1
        assert Counter(r.body["id"] for r in sub.alerts()) == Counter(a.id for a in item.alerts)
        sms = by_kind["sms"].body
        assert sms["message_id"] == item.sms.id and sms["decision"] == "block"
        assert sms["dest"] == "7701***0001" and sms["source"] == "KASPI"
        assert by_kind["complaint"].body["complainant"] == "7707***4567"
        counts = await store.counts()
        assert counts["alerts_sent"] == 3 and counts["alerts_pending"] == 0

        # status: online while connected, offline ("shutdown") after a clean stop
        states = [r.body for r in sub.statuses()]
        assert [s["state"] for s in states] == ["online", "offline"]
        assert states[1]["reason"] == "shutdown"
        for status in states:
            status_validator.validate(status)

    # retained: a subscriber arriving later is told the last state at once
    async with Subscriber(mosquitto.port, ["fraudgate/status"]) as late:
        await wait_until(lambda: bool(late.statuses()), 5, "retained status")
        assert late.statuses()[0].retain and late.statuses()[0].body["state"] == "offline"


async def test_retained_status_online_and_last_will_when_publisher_dies(
    mosquitto: MosquittoBroker, status_validator: Draft202012Validator
) -> None:
    client_id = f"gw-{uuid.uuid4().hex[:8]}"
    script = (
        "import asyncio, sys\n"
        "from gateway.alerts.mqtt import AlertPublisher, MqttConfig\n"
        "async def main():\n"
        "    cfg = MqttConfig(port=int(sys.argv[1]), client_id=sys.argv[2], keepalive=5)\n"
        "    async with AlertPublisher(cfg):\n"
        "        print('online', flush=True)\n"
        "        await asyncio.sleep(600)\n"
        "asyncio.run(main())\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, str(mosquitto.port), client_id, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert line.strip() == b"online"
        async with Subscriber(mosquitto.port, ["fraudgate/status"]) as sub:
            await wait_until(lambda: bool(sub.statuses()), 5, "retained online status")
            online = sub.statuses()[0]
            assert online.retain and online.body["state"] == "online"
            assert online.body["client_id"] == client_id
            status_validator.validate(online.body)

            proc.send_signal(signal.SIGKILL)  # no DISCONNECT: the broker sends the will
            await proc.wait()
            await wait_until(lambda: len(sub.statuses()) >= 2, 10, "last will")
            offline = sub.statuses()[-1].body
            assert offline["state"] == "offline" and offline["reason"] == "connection lost"
            status_validator.validate(offline)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    async with Subscriber(mosquitto.port, ["fraudgate/status"]) as late:
        await wait_until(lambda: bool(late.statuses()), 5, "retained offline status")
        assert late.statuses()[0].retain
        assert late.statuses()[0].body["state"] == "offline"


async def test_broker_outage_loses_nothing_and_doubles_nothing(
    mosquitto: MosquittoBroker,
    store: Store,
    alert_validator: Draft202012Validator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.alerts.dispatcher")
    cfg = config(mosquitto.port)
    async with (
        Subscriber(mosquitto.port, ["fraudgate/alerts/#"], persistent=True) as sub,
        dispatcher(store, cfg) as d,
    ):
        before = [flagged_sms(i) for i in range(20)]
        await store.record(before)
        d.notify()
        await wait_until(lambda: len(sub.alerts()) == 20, 10, "alerts before the outage")
        await wait_until(lambda: d.published == 20, 5, "marked sent")
        # Let the subscriber's PUBACKs reach the broker: a message the broker has not seen
        # acknowledged is sent again after the restart (QoS 1 between broker and subscriber).
        await asyncio.sleep(0.5)
        await asyncio.to_thread(mosquitto.stop)  # SIGTERM: the broker saves the sessions
        await wait_until(lambda: d.broker_down, 10, "dispatcher sees the outage")
        during = [flagged_sms(100 + i) for i in range(30)]
        for k in range(0, 30, 10):  # the pipeline goes on recording and notifying
            await store.record(during[k : k + 10])
            d.notify()
            await asyncio.sleep(0.2)
        assert (await store.counts())["alerts_pending"] == 30  # kept in the outbox

        await asyncio.to_thread(mosquitto.start)  # same port
        await wait_until(lambda: len(sub.alerts()) >= 50, 20, "alerts after the outage")
        await wait_until(
            lambda: _pending_zero(store), 10, "outbox drained after the broker came back"
        )
        await asyncio.sleep(0.5)  # a duplicate would arrive by now

    ids = Counter(r.body["id"] for r in sub.alerts())
    expected = {a.id for item in before + during for a in item.alerts}
    assert set(ids) == expected  # none lost
    assert max(ids.values()) == 1  # none doubled
    for received in sub.alerts():
        alert_validator.validate(received.body)
    assert sub.connections >= 2
    # the order of the outbox is kept
    order = [r.body["message_id"] for r in sub.alerts()]
    assert order == [item.sms.id for item in before + during]

    messages = [r.getMessage() for r in caplog.records if r.name == "gateway.alerts.dispatcher"]
    assert sum("broker down" in m for m in messages) == 1, messages
    assert sum("is back:" in m for m in messages) == 1, messages


async def _pending_zero(store: Store) -> bool:
    return (await store.counts())["alerts_pending"] == 0


async def test_publish_fails_fast_when_the_broker_dies(mosquitto: MosquittoBroker) -> None:
    async with AlertPublisher(config(mosquitto.port)) as publisher:
        alert = Alert(AlertKind.FANOUT, fanout_alert_payload("KASPI", 60.0, 10, 10), T0)
        await publisher.publish(alert)
        await asyncio.to_thread(mosquitto.kill)
        started = time.monotonic()
        with pytest.raises(BrokerUnavailable):
            for _ in range(100):
                await publisher.publish(alert)
                await asyncio.sleep(0.05)
        assert time.monotonic() - started < 4  # the loss is noticed, not waited out
        assert not publisher.connected
    with pytest.raises(BrokerUnavailable, match="unreachable"):
        async with AlertPublisher(config(mosquitto.port)):
            pass


async def test_alert_with_personal_data_is_set_aside(
    mosquitto: MosquittoBroker, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    good = flagged_sms(1)
    bad = flagged_sms(2)
    bad.alerts[0].payload["surname"] = "Ахметов"
    await store.record([bad, good])
    async with (
        Subscriber(mosquitto.port, ["fraudgate/alerts/#"]) as sub,
        dispatcher(store, config(mosquitto.port)) as d,
    ):
        await wait_until(lambda: d.published == 1 and d.rejected == 1, 10, "one sent, one not")
        await asyncio.sleep(0.3)
    assert [r.body["id"] for r in sub.alerts()] == [good.alerts[0].id]
    counts = await store.counts()
    assert (counts["alerts_sent"], counts["alerts_failed"], counts["alerts_pending"]) == (1, 1, 0)
    assert any("personal data" in r.getMessage() for r in caplog.records)


async def test_alerts_about_iin_shaped_senders_reach_the_subscriber(
    mosquitto: MosquittoBroker, store: Store, alert_validator: Draft202012Validator
) -> None:
    """A sender address that happens to pass the IIN check (a fraudster may choose one) does
    not suppress its own alerts; an IIN in the free text of the same alert is masked."""
    sms = SmsEvent(
        source="900101300017",  # a synthetic valid IIN (shared/domain/KAZAKHSTAN.md)
        dest="77010000001",
        text="Ваша карта заблокирована",
        smsc="smsc-1",
        route=Route.INTERNATIONAL,
        received_at=T0,
    )
    verdict = combine(
        [Reason("content", "content.ru.card_blocked", 0.9, "card blocked, client 850515400306")],
        Thresholds(),
    )
    complaint = Complaint("77071234567", "от +380 50 116 6299", T0 + 2, sms.id,
                          UKRAINIAN_IIN_SHAPED)  # fmt: skip
    item = Inspected(
        sms, verdict, [Alert(AlertKind.SMS_VERDICT, sms_alert_payload(sms, verdict), T0)]
    )
    item.alerts += [
        Alert(AlertKind.FANOUT, fanout_alert_payload(UKRAINIAN_IIN_SHAPED, 60.0, 250, 240), T0 + 1),
        Alert(AlertKind.COMPLAINT, complaint_alert_payload(complaint), T0 + 2),
    ]
    await store.record([item])
    async with (
        Subscriber(mosquitto.port, ["fraudgate/alerts/#"]) as sub,
        dispatcher(store, config(mosquitto.port)) as d,
    ):
        await wait_until(lambda: len(sub.alerts()) == 3, 10, "all three alerts")
        await wait_until(lambda: d.published == 3, 5, "marked sent")
    assert d.rejected == 0
    by_kind = {r.body["kind"]: r.body for r in sub.alerts()}
    for body in by_kind.values():
        alert_validator.validate(body)
    assert by_kind["sms"]["source"] == "900101300017"
    assert by_kind["sms"]["reasons"][0]["description"] == "card blocked, client 8505******06"
    assert by_kind["fanout"]["sender"] == UKRAINIAN_IIN_SHAPED
    assert by_kind["complaint"]["suspected_sender"] == UKRAINIAN_IIN_SHAPED
    counts = await store.counts()
    assert (counts["alerts_sent"], counts["alerts_failed"]) == (3, 0)


async def test_refused_credentials_are_reported_and_retried(
    mosquitto_factory: Callable[..., MosquittoBroker],
    store: Store,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.alerts.dispatcher")
    broker = mosquitto_factory(users={"analyst": "reader-pw"})
    cfg = config(broker.port, username="gateway", password="s3cret")

    with pytest.raises(BrokerAuthError, match="refused the connection of user 'gateway'"):
        async with AlertPublisher(cfg):
            pass
    with pytest.raises(BrokerAuthError, match="anonymous"):
        async with AlertPublisher(config(broker.port)):
            pass

    item = flagged_sms(1)
    await store.record([item])
    async with Subscriber(
        broker.port, ["fraudgate/alerts/#"], username="analyst", password="reader-pw"
    ) as sub:
        d = dispatcher(store, cfg)
        async with d:
            await wait_until(lambda: d.broker_down, 5, "refusal noticed")
            await asyncio.sleep(0.5)  # several retries
            assert "BrokerAuthError" in (d.last_error or "")
            assert (await store.counts())["alerts_pending"] == 1

            # the operator adds the account; SIGHUP makes mosquitto reload its password file
            await asyncio.to_thread(broker.add_user, "gateway", "s3cret")
            await wait_until(lambda: len(sub.alerts()) == 1, 10, "alert after the fix")
            await wait_until(lambda: d.published == 1, 5, "marked sent")
        assert sub.alerts()[0].body["id"] == item.alerts[0].id

    messages = [r.getMessage() for r in caplog.records if r.name == "gateway.alerts.dispatcher"]
    refusals = [m for m in messages if "refused the connection of user 'gateway'" in m]
    assert "check the MQTT credentials" in refusals[0]
    assert len(refusals) == 1, messages  # said once, clearly, not at every retry
    assert sum("is back:" in m for m in messages) == 1


async def test_tls_with_generated_ca_and_client_certificate(
    mosquitto_factory: Callable[..., MosquittoBroker],
    tls_material: TlsMaterial,
    store: Store,
    alert_validator: Draft202012Validator,
) -> None:
    tls = tls_material
    broker = mosquitto_factory(tls=tls, require_client_cert=True, users={"gateway": "pw"})
    good = config(  # tls_ca alone turns TLS on
        broker.port,
        username="gateway",
        password="pw",
        tls_ca=str(tls.ca),
        tls_cert=str(tls.client_cert),
        tls_key=str(tls.client_key),
    )
    # A broker whose certificate we do not trust: refused with a TLS error.
    untrusted = config(
        broker.port,
        username="gateway",
        password="pw",
        tls=True,
        tls_ca=str(tls.other_ca),
        tls_cert=str(tls.client_cert),
        tls_key=str(tls.client_key),
    )
    with pytest.raises(BrokerTlsError, match="TLS"):
        async with AlertPublisher(untrusted):
            pass
    # No client certificate where the broker requires one: refused too.
    # (TLS 1.3: the broker checks the client certificate after the client's handshake is done,
    # so the client learns it only when no CONNACK comes: a short timeout keeps the test fast)
    with pytest.raises(BrokerUnavailable):
        async with AlertPublisher(config(broker.port, tls=True, tls_ca=str(tls.ca), timeout=1)):
            pass

    item = flagged_sms(1)
    await store.record([item])
    sub_tls = aiomqtt.TLSParameters(
        ca_certs=str(tls.ca), certfile=str(tls.client_cert), keyfile=str(tls.client_key)
    )
    async with (
        Subscriber(
            broker.port,
            ["fraudgate/alerts/#"],
            username="gateway",
            password="pw",
            tls_params=sub_tls,
        ) as sub,
        dispatcher(store, good) as d,
    ):
        await wait_until(lambda: d.published == 1, 10, "published over TLS")
        await wait_until(lambda: len(sub.alerts()) == 1, 5, "received over TLS")
    alert_validator.validate(sub.alerts()[0].body)
    assert "require_certificate true" in broker.conf.read_text()


async def test_tls_true_verifies_the_broker_against_the_system_ca_store(
    mosquitto_factory: Callable[..., MosquittoBroker],
    tls_material: TlsMaterial,
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
    alert_validator: Draft202012Validator,
) -> None:
    """`[mqtt] tls = true` without tls_ca: TLS, the broker's certificate checked against the
    system's CA store. OpenSSL's default paths honour SSL_CERT_FILE, so the test CA stands in
    for the system's bundle; without it the broker (signed by the test CA) is not trusted."""
    broker = mosquitto_factory(tls=tls_material)  # TLS listener, no client certificate needed
    data = {"mqtt": {"port": broker.port, "tls": True, "client_id": f"gw-{uuid.uuid4().hex[:8]}"}}
    cfg = dataclasses.replace(mqtt_config(from_toml(data).mqtt), timeout=5.0)
    assert cfg.use_tls and cfg.tls_ca is None
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(BrokerTlsError, match="certificate verify failed"):
        async with AlertPublisher(cfg):
            pass

    monkeypatch.setenv("SSL_CERT_FILE", str(tls_material.ca))
    item = flagged_sms(1)
    await store.record([item])
    sub_tls = aiomqtt.TLSParameters(ca_certs=str(tls_material.ca))
    async with (
        Subscriber(broker.port, ["fraudgate/alerts/#"], tls_params=sub_tls) as sub,
        dispatcher(store, cfg) as d,
    ):
        await wait_until(lambda: d.published == 1, 10, "published over TLS")
        await wait_until(lambda: len(sub.alerts()) == 1, 5, "received over TLS")
    alert_validator.validate(sub.alerts()[0].body)


async def test_store_outage_pauses_the_outbox_and_keeps_the_broker_connection(
    mosquitto: MosquittoBroker,
    postgres_server: PostgresServer,
    postgres_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.alerts.dispatcher")
    store = await Store.open(postgres_url)
    try:
        await store.migrate()
        async with (
            Subscriber(mosquitto.port, ["fraudgate/#"]) as sub,
            dispatcher(store, config(mosquitto.port), poll_interval=0.2) as d,
        ):
            await wait_until(lambda: d.connected, 5, "connected")
            await asyncio.to_thread(postgres_server.stop)
            await wait_until(lambda: d.store_down, 10, "store outage noticed")
            await asyncio.sleep(0.5)  # retries while the database is away
            await asyncio.to_thread(postgres_server.start)
            item = flagged_sms(1)
            await store.record([item])  # the pipeline retries its batch once the store is back
            d.notify()
            await wait_until(lambda: len(sub.alerts()) == 1, 10, "alert after the store outage")
            await wait_until(lambda: not d.store_down, 5, "store back")
            assert d.connects == 1  # the MQTT connection stayed up the whole time
            assert [s.body["state"] for s in sub.statuses()] == ["online"]
    finally:
        await asyncio.to_thread(postgres_server.start)
        await store.close()
    messages = [r.getMessage() for r in caplog.records if r.name == "gateway.alerts.dispatcher"]
    assert sum("outbox paused" in m for m in messages) == 1, messages
    assert sum("outbox resumed" in m for m in messages) == 1, messages


async def test_flush_publishes_everything_pending_before_a_stop(
    mosquitto: MosquittoBroker, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    items = [flagged_sms(i) for i in range(250)]  # more than one batch of 100
    await store.record(items)
    d = dispatcher(store, config(mosquitto.port), poll_interval=60.0)
    async with Subscriber(mosquitto.port, ["fraudgate/#"]) as sub:
        task = asyncio.create_task(d.run())  # as the daemon runs it
        try:
            await asyncio.wait_for(d.flush(10.0), 15)
            assert d.published == 250
            assert (await store.counts())["alerts_pending"] == 0
            await store.record([flagged_sms(1000)])
            await d.flush(10.0)  # notify + wait in one call
            assert d.published == 251
        finally:
            task.cancel()  # the daemon cancels the task after flush()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await wait_until(lambda: len(sub.alerts()) == 251, 5, "all received")
        await wait_until(lambda: len(sub.statuses()) == 2, 5, "offline status")
        assert sub.statuses()[-1].body["reason"] == "shutdown"  # cancelled is a clean stop

    # broker down: flush gives up after its timeout and says so; the alert stays pending
    await asyncio.to_thread(mosquitto.stop)
    await store.record([flagged_sms(2000)])
    d2 = dispatcher(store, config(mosquitto.port))
    async with d2:
        started = time.monotonic()
        await d2.flush(0.5)
        assert time.monotonic() - started < 2
    assert (await store.counts())["alerts_pending"] == 1
    assert any("not drained" in r.getMessage() for r in caplog.records)
