"""The outbox dispatcher: publishes the alerts the pipeline recorded, none lost.

The pipeline writes alerts into the store's outbox in the same transaction as the SMS that caused
them, then calls `dispatcher.notify()`. The dispatcher reads pending alerts oldest first,
publishes them with QoS 1, and marks each one sent only after the broker's PUBACK. When the
broker is down the alerts simply stay pending; the dispatcher reconnects with capped exponential
backoff and jitter (logging once when the broker goes down and once when it is back) and sends
them when it returns.

Delivery is at-least-once: an alert whose PUBACK was lost with the connection, or that was
acknowledged just before the store became unreachable, is published again. Consumers
de-duplicate by the alert's `id`. In a run without outages every alert is published exactly once:
one dispatcher reads, publishes and marks sent in sequence.

Every node of a cluster runs its dispatcher (each publishes its own retained states): the alerts
are drained through `store.claim_alerts()`, which on PostgreSQL locks the batch FOR UPDATE SKIP
LOCKED while it is published and marks it sent in the same transaction, so two nodes never
publish the same alert; a node dying mid-publish rolls back and another node publishes the batch
again, with the same alert ids (docs/operations.md, "Several nodes").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol, TypeVar

from gateway.alerts.mqtt import (
    AlertPublisher,
    AlertRejected,
    BrokerAuthError,
    BrokerError,
    BrokerTlsError,
    MqttConfig,
)
from gateway.domain import Alert
from gateway.loop import BackgroundLoop
from gateway.store import AlertClaim, StoreError, StoreUnavailable
from smsc.backoff import Backoff, Failure, Outage

T = TypeVar("T")

log = logging.getLogger(__name__)


class OutboxStore(Protocol):
    """What the dispatcher needs of the store (gateway.store.Store provides it)."""

    def claim_alerts(
        self, limit: int, *, timeout: float | None = None
    ) -> AbstractAsyncContextManager[AlertClaim]: ...


class OutboxDispatcher(BackgroundLoop):
    """Supervisor loop publishing the store's pending alerts to MQTT.

    `async with OutboxDispatcher(store, config) as d:` runs it in a task (or `await d.run()`
    until `await d.stop()`, or cancel that task). `notify()` wakes it at once; otherwise it polls
    every `poll_interval` seconds. `await d.flush(timeout)` before stopping publishes what is
    pending."""

    task_name = "outbox-dispatcher"

    def __init__(
        self,
        store: OutboxStore,
        config: MqttConfig,
        *,
        batch_size: int = 100,
        poll_interval: float = 2.0,
        backoff: Backoff | None = None,
        version: str | None = None,
        clock: Callable[[], float] = time.time,
        store_timeout: float = 10.0,
        gather: float = 0.0,
    ) -> None:
        if batch_size < 1 or poll_interval <= 0:
            raise ValueError("batch_size and poll_interval must be positive")
        self.store = store
        # a database that hangs (frozen, not down) must not hang the dispatcher: the retained
        # states (the database's health among them) still have to go out
        self.store_timeout = store_timeout
        # seconds a pass waits after the previous one before reading the outbox again, so
        # alerts arriving together go out (and are marked sent) together: every batch of the
        # pipeline used to wake a pass whose UPDATE took SQLite's write lock from the recorder
        # (at 200 alerts/s, half the gateway's throughput). 0 for tests that count passes.
        self.gather = gather
        self._last_pass = 0.0
        self.config = config
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.backoff = backoff or Backoff()
        # the broker's and the store's outages, each logged once when it starts and once when
        # it ends
        self.broker = Outage(self.backoff)
        self.store_outage = Outage(Backoff(initial=self.backoff.initial, cap=self.backoff.cap))
        self.version = version
        self.clock = clock
        super().__init__(stop_grace=config.timeout + 5)  # a publish/POST in flight may finish
        # state for the logs and for callers
        self.connected = False
        self.last_error: str | None = None
        self.published = 0
        self.rejected = 0
        self.connects = 0
        # flush(): notify() counts requests; a pass that empties the outbox records the last
        # request it has seen
        self._requested = 0
        self._drained_upto = -1
        self._drained = asyncio.Event()
        # retained state documents (probe health): the latest per topic, published when it
        # changes and again after every reconnection (a broker restarted without persistence
        # would otherwise forget them)
        self._states: dict[str, dict[str, object]] = {}
        self._states_dirty: set[str] = set()

    # -- control --------------------------------------------------------------------------------

    def notify(self) -> None:
        """New alerts are in the outbox: publish them now (call from the event loop's thread)."""
        self._requested += 1
        self._wake.set()

    def set_state(self, topic: str, payload: dict[str, object]) -> None:
        """Keep `payload` as the retained document of `topic`; published as soon as possible.
        Only the latest document per topic is kept (state, not events: nothing to replay)."""
        if self._states.get(topic) == payload:
            return
        self._states[topic] = payload
        self._states_dirty.add(topic)
        self._wake.set()

    async def flush(self, timeout: float) -> None:
        """Publish every alert pending now; return once the outbox is empty or after `timeout`
        seconds (then the rest stays pending, published after the next start). Needs the
        dispatcher running (run() or start())."""
        self.notify()
        target = self._requested
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._drained_upto < target:
            self._drained.clear()
            remaining = deadline - loop.time()
            try:
                if remaining <= 0:
                    raise TimeoutError
                await asyncio.wait_for(self._drained.wait(), remaining)
            except TimeoutError:
                log.warning(
                    "outbox not drained within %.1f s (%s): the rest is published later",
                    timeout,
                    self.last_error or "still publishing",
                )
                return

    # -- the loop ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, drain the outbox, wait for more; reconnect after failures. Returns after
        stop()."""
        while not self._stop.is_set():
            try:
                async with AlertPublisher(self.config, version=self.version) as publisher:
                    self._broker_up()
                    await self._serve(publisher)
            except BrokerError as e:
                self._broker_failed(e)
            except Exception as e:  # a bug must not end the supervisor: log it, retry
                log.exception("outbox dispatcher failed; retrying")
                self.last_error = f"{type(e).__name__}: {e}"
            finally:
                self.connected = False
            if not self._stop.is_set():
                await self.broker.pause(self._stop)

    @property
    def broker_down(self) -> bool:
        return self.broker.down

    @property
    def store_down(self) -> bool:
        return self.store_outage.down

    async def _serve(self, publisher: AlertPublisher) -> None:
        self._states_dirty.update(self._states)  # a new connection: publish every state again
        while not self._stop.is_set():
            await self._gather()
            seen = self._requested
            self._wake.clear()
            await self._publish_states(publisher)
            try:
                self._last_pass = time.monotonic()
                # claimed: another node's dispatcher skips these until they are marked
                async with self.store.claim_alerts(
                    self.batch_size, timeout=self.store_timeout
                ) as claim:
                    batch = claim.alerts
                    if batch:
                        await self._publish(publisher, claim)
                self._store_up()
                if len(batch) < self.batch_size:  # caught up with every notify() seen
                    self._drained_upto = seen
                    self._drained.set()
            except StoreError as e:  # StoreUnavailable, or a schema problem: retry later
                self._store_failed(e)
                await self._idle(publisher, self.store_outage.next_delay())
                continue
            if len(batch) < self.batch_size:
                await self._idle(publisher, self.poll_interval)

    async def _publish(self, publisher: AlertPublisher, claim: AlertClaim) -> None:
        batch: Sequence[Alert] = claim.alerts
        acked: list[str] = []
        rejected: list[tuple[Alert, AlertRejected]] = []

        async def one(alert: Alert) -> None:
            try:
                await publisher.publish(alert)
            except AlertRejected as e:
                rejected.append((alert, e))
            else:
                acked.append(alert.id)

        # Published concurrently (up to the client's in-flight window) in outbox order: paho
        # writes them in call order and the broker keeps the order of one connection.
        try:
            results = await asyncio.gather(*(one(a) for a in batch), return_exceptions=True)
        except asyncio.CancelledError:  # stopped mid-batch: keep what the broker acknowledged
            if acked:
                with contextlib.suppress(StoreError):
                    await claim.mark_sent(acked, self.clock())
            raise
        try:
            if acked:
                await self._store_call(claim.mark_sent(acked, self.clock()))
                self.published += len(acked)
            for alert, error in rejected:
                log.error("alert %s (%s) not published: %s", alert.id, alert.kind, error)
                await claim.mark_failed(alert.id, str(error), permanent=True)
                self.rejected += 1
        finally:
            for result in results:
                if isinstance(result, BaseException):
                    raise result

    async def _gather(self) -> None:
        """Let alerts of the next few pipeline batches join this pass (see `gather`)."""
        wait = self.gather - (time.monotonic() - self._last_pass)
        if wait > 0 and not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), wait)

    async def _store_call(self, call: Awaitable[T]) -> T:
        try:
            return await asyncio.wait_for(call, self.store_timeout)
        except TimeoutError:
            raise StoreUnavailable(
                f"the database did not answer within {self.store_timeout:g} s"
            ) from None

    async def _publish_states(self, publisher: AlertPublisher) -> None:
        for topic in sorted(self._states_dirty):
            payload = self._states[topic]
            try:
                await publisher.publish_state(topic, payload)
            except BrokerError:
                raise  # the connection: the topic stays dirty, published after the reconnect
            except Exception as e:  # a document that cannot go out must not block the alerts
                log.error("state for %s not published: %s", topic, e)
            self._states_dirty.discard(topic)  # a newer one may have arrived meanwhile
            if self._states.get(topic) is not payload:
                self._states_dirty.add(topic)

    async def _idle(self, publisher: AlertPublisher, timeout: float) -> None:
        """Wait for notify(), stop(), the timeout, or the loss of the connection (raised)."""
        waits = {
            asyncio.ensure_future(self._wake.wait()),
            asyncio.ensure_future(self._stop.wait()),
        }
        lost = asyncio.ensure_future(publisher.wait_lost())
        try:
            done, _ = await asyncio.wait(
                waits | {lost}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for fut in (*waits, lost):
                fut.cancel()
        if lost in done or not publisher.connected:
            raise publisher.lost_error()

    # -- state changes, logged once each --------------------------------------------------------

    def _broker_up(self) -> None:
        self.connected = True
        self.connects += 1
        if self.broker.restored() is not None:
            log.warning("MQTT broker %s is back: publishing the outbox", self.config.where)
        elif self.connects == 1:
            log.info("connected to MQTT broker %s", self.config.where)
        self.last_error = None

    def _broker_failed(self, error: BrokerError) -> None:
        text = str(error)
        how = self.broker.failed(error)
        if how is Failure.AGAIN:
            log.debug("MQTT broker still unavailable: %s", text)
        elif isinstance(error, BrokerAuthError):
            log.error("%s; alerts stay in the outbox, retrying: check the MQTT credentials", text)
        elif isinstance(error, BrokerTlsError):
            log.error("%s; alerts stay in the outbox, retrying: check the TLS settings", text)
        elif how is Failure.FIRST:
            log.warning("MQTT broker down: %s; alerts stay in the outbox until it returns", text)
        else:  # a different failure than before
            log.warning("MQTT broker still unavailable: %s", text)
        self.last_error = self.broker.last_error

    def _store_failed(self, error: StoreError) -> None:
        if self.store_outage.failed(error) is Failure.FIRST:
            kind = "unavailable" if isinstance(error, StoreUnavailable) else "failing"
            log.warning("store %s, outbox paused: %s", kind, error)

    def _store_up(self) -> None:
        if self.store_outage.restored() is not None:
            log.warning("store is back: outbox resumed")


__all__ = ["OutboxDispatcher"]
