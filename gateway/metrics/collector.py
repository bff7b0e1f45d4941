"""The pull collector: what the daemon already counts, read at scrape time.

Nothing here is called per SMS: the handlers, supervisors, Recorder and dispatchers keep plain
counters (smsc and gsm_probe import nothing of gateway or Prometheus) and a scrape reads them.
Label values come from bounded sets only: bind and probe names from the configuration, SMPP
command and status names (unknown ones: "other"), decisions, rule families, case states.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from gateway.pipeline.handler import PipelineStats
from smsc.constants import CommandId, Status

if TYPE_CHECKING:
    from gateway.daemon import Gateway
    from gateway.pipeline.recorder import Recorder

# PipelineStats fields exposed as fraudgate_sms_total{decision} rather than as events
DECISIONS = {"allowed": "allow", "flagged": "flag", "blocked": "block"}
_FAMILY = re.compile(r"[a-z][a-z0-9_-]{0,31}")


def family_label(family: str) -> str:
    """A rule family as a label value: a short lower-case name, else "other"."""
    return family if _FAMILY.fullmatch(family) else "other"


def command_label(command_id: int) -> str:
    try:
        return CommandId(command_id).name.lower()
    except ValueError:
        return "other"


def status_label(status: int) -> str:
    try:
        return Status(status).name
    except ValueError:
        return "other"


def _counter(name: str, doc: str, labels: list[str]) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, labels=labels)


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


class GatewayCollector:
    """Reads one Gateway (and its Recorder) at each scrape."""

    def __init__(self, gateway: Gateway, recorder: Recorder) -> None:
        self.gateway = gateway
        self.recorder = recorder

    def collect(self) -> Iterator[Metric]:
        yield from self._info()
        yield from self._smsc()
        yield from self._pipeline()
        yield from self._store()
        yield from self._mqtt()
        yield from self._cases()
        yield from self._probes()
        yield from self._detectors()
        yield from self._shared()
        yield from self._leases()
        yield from self._proxy()
        yield from self._calls()

    def _info(self) -> Iterable[Metric]:
        cfg = self.gateway.cfg
        info = _gauge("fraudgate_info", "The gateway's mode (always 1)", ["mode"])
        info.add_metric([cfg.mode], 1)
        up = _gauge("fraudgate_ready", "1 once the daemon has started its supervisors", [])
        up.add_metric([], 1 if self.gateway.ready.is_set() else 0)
        return (info, up)

    def _smsc(self) -> Iterable[Metric]:
        bound = _gauge("fraudgate_smsc_bound", "1 while the SMSC bind is bound", ["bind"])
        binds = _counter("fraudgate_smsc_binds", "Successful binds", ["bind"])
        reconnects = _counter(
            "fraudgate_smsc_reconnects", "Binds after the first (the link came back)", ["bind"]
        )
        failures = _counter(
            "fraudgate_smsc_link_failures",
            "Connections or binds that failed and bound links that dropped",
            ["bind"],
        )
        window = _gauge(
            "fraudgate_smsc_window_in_use",
            "Requests awaiting an answer: in = the SMSC's we have not answered, out = ours",
            ["bind", "direction"],
        )
        size = _gauge("fraudgate_smsc_window_size", "The configured window", ["bind"])
        pdus = _counter(
            "fraudgate_smsc_pdus",
            "SMPP PDUs of the application by direction, command and status",
            ["bind", "direction", "command", "status"],
        )
        for s in self.gateway.supervisors:
            bind = s.config.label
            link = s.link
            is_bound = link is not None and link.session.bound
            bound.add_metric([bind], 1 if is_bound else 0)
            binds.add_metric([bind], s.binds)
            reconnects.add_metric([bind], max(s.binds - 1, 0))
            failures.add_metric([bind], s.failures)
            window.add_metric([bind, "in"], link.session.pending_incoming if link else 0)
            window.add_metric([bind, "out"], link.session.in_flight if link else 0)
            size.add_metric([bind], s.config.session.window)
            for direction, counts in (("in", s.pdus.received), ("out", s.pdus.sent)):
                merged: dict[tuple[str, str], int] = {}
                for (cid, status), n in list(counts.items()):
                    key = (command_label(cid), status_label(status))
                    merged[key] = merged.get(key, 0) + n
                for (command, status_name), n in sorted(merged.items()):
                    pdus.add_metric([bind, direction, command, status_name], n)
        return (bound, binds, reconnects, failures, window, size, pdus)

    def _pipeline(self) -> Iterable[Metric]:
        sms = _counter("fraudgate_sms", "Whole SMS inspected, by decision", ["bind", "decision"])
        events = _counter(
            "fraudgate_pipeline_events",
            "Other events of the SMS path (rejected, store_errors, receipts, forwarded...)",
            ["bind", "event"],
        )
        families = _counter(
            "fraudgate_verdict_findings",
            "SMS by decision and rule family (rule_id before its first dot) of a finding",
            ["bind", "decision", "family"],
        )
        names = [f.name for f in dataclasses.fields(PipelineStats)]
        for h in self.gateway.handlers:
            st = h.stats
            for name in names:
                value = getattr(st, name)
                if name in DECISIONS:
                    sms.add_metric([h.name, DECISIONS[name]], value)
                elif name != "received":  # the sum of the decisions
                    events.add_metric([h.name, name], value)
            merged: dict[tuple[str, str], int] = {}
            for (decision, family), n in list(h.families.items()):
                key = (decision, family_label(family))
                merged[key] = merged.get(key, 0) + n
            for (decision, family), n in sorted(merged.items()):
                families.add_metric([h.name, decision, family], n)
        return (sms, events, families)

    def _store(self) -> Iterable[Metric]:
        r = self.recorder
        committed = _counter("fraudgate_store_committed", "SMS recorded", [])
        committed.add_metric([], r.committed)
        repeated = _counter("fraudgate_store_repeated", "Redeliveries recorded already", [])
        repeated.add_metric([], r.repeated)
        failed = _counter(
            "fraudgate_store_failed", "SMS answered for retry: the database failed", []
        )
        failed.add_metric([], r.failed)
        backlog = _gauge("fraudgate_store_backlog", "SMS waiting for the group commit", [])
        backlog.add_metric([], r.backlog)
        up = _gauge("fraudgate_database_up", "1 while the database answers the Recorder", [])
        up.add_metric([], 1 if self.gateway.database_ok else 0)
        return (committed, repeated, failed, backlog, up)

    def _mqtt(self) -> Iterable[Metric]:
        d: Any = self.gateway.dispatcher
        connected = _gauge("fraudgate_mqtt_connected", "1 while the MQTT broker is connected", [])
        published = _counter("fraudgate_mqtt_published", "Alerts published (PUBACK)", [])
        rejected = _counter("fraudgate_mqtt_rejected", "Alerts the broker refused", [])
        connects = _counter("fraudgate_mqtt_connects", "Connections to the broker", [])
        if d is not None and hasattr(d, "connected"):  # not NullDispatcher (MQTT off)
            connected.add_metric([], 1 if d.connected else 0)
            published.add_metric([], d.published)
            rejected.add_metric([], d.rejected)
            connects.add_metric([], d.connects)
        return (connected, published, rejected, connects)

    def _cases(self) -> Iterable[Metric]:
        w = self.gateway.workflow
        opened = _counter("fraudgate_cases_opened", "Cases opened by the workflow", [])
        switch = _counter(
            "fraudgate_switch_calls",
            "Calls to the switch by action and outcome (ok, unavailable, rejected, error)",
            ["action", "outcome"],
        )
        centre_up = _gauge("fraudgate_centre_up", "1 while the centre answers", [])
        delivered = _counter("fraudgate_centre_delivered", "Reports the centre acknowledged", [])
        refused = _counter("fraudgate_centre_rejected", "Reports the centre refused", [])
        if w is not None:
            opened.add_metric([], w.opened)
            calls: dict[tuple[str, str], int] = getattr(w.cases.switch, "calls", {})
            for (action, outcome), n in sorted(calls.items()):
                switch.add_metric([action, outcome], n)
            for waker in list[Any](w.wake):
                if hasattr(waker, "delivered") and hasattr(waker, "centre_down"):
                    centre_up.add_metric([], 0 if waker.centre_down else 1)
                    delivered.add_metric([], waker.delivered)
                    refused.add_metric([], waker.rejected)
        return (opened, switch, centre_up, delivered, refused)

    def _probes(self) -> Iterable[Metric]:
        up = _gauge("fraudgate_probe_up", "1 while the probe is healthy", ["probe"])
        connected = _gauge("fraudgate_probe_connected", "1 while the modem answers", ["probe"])
        registered = _gauge("fraudgate_probe_registered", "1 while on the network", ["probe"])
        signal = _gauge("fraudgate_probe_signal_dbm", "Signal strength (+CSQ)", ["probe"])
        findings = _counter("fraudgate_probe_findings", "Test-call findings", ["outcome"])
        p = self.gateway.probes
        if p is not None:
            now = time.time()
            for name, h in sorted(p.health.items()):
                up.add_metric([name], 0 if p.problem(name, now) else 1)
                connected.add_metric([name], 1 if h.connected else 0)
                registered.add_metric([name], 1 if h.registered else 0)
                if h.signal_dbm is not None:
                    signal.add_metric([name], h.signal_dbm)
            for outcome, n in sorted(p.outcomes.items()):
                findings.add_metric([outcome], n)
        return (up, connected, registered, signal, findings)

    def _detectors(self) -> Iterable[Metric]:
        inspector = self.gateway.inspector
        campaigns = _gauge(
            "fraudgate_campaign_entries", "The campaign detector's tables (clusters...)", ["table"]
        )
        velocity = _gauge(
            "fraudgate_velocity_keys", "Keys in the velocity detector's windows", ["table"]
        )
        if inspector.campaigns is not None:
            for table, n in sorted(inspector.campaigns.tracked.items()):
                campaigns.add_metric([table], n)
        if inspector.velocity is not None:
            for table, n in sorted(inspector.velocity.tracked.items()):
                velocity.add_metric([table], n)
        return (campaigns, velocity)

    def _shared(self) -> Iterable[Metric]:
        """[shared]: the state the nodes share in Redis (families without samples without it)."""
        shared = self.gateway.shared
        up = _gauge("fraudgate_shared_state_up", "Redis answers the shared windows (1) or not", [])
        trips = CounterMetricFamily(
            "fraudgate_shared_round_trips", "Round trips to Redis that answered (one per batch)"
        )
        counted = CounterMetricFamily(
            "fraudgate_shared_messages",
            "Messages by where their windows were counted: shared (all nodes) or local",
            labels=["counted"],
        )
        parts = CounterMetricFamily(
            "fraudgate_shared_parts",
            "Parts of concatenated messages by what became of them among the nodes: parked in "
            "Redis, completed here, answered with another node's verdict, reassembled locally",
            labels=["outcome"],
        )
        if shared is not None:
            up.add_metric([], 1 if shared.up else 0)
            trips.add_metric([], shared.batches)
            counted.add_metric(["shared"], shared.messages)
            counted.add_metric(["local"], shared.local)
            if shared.parts is not None:
                p = shared.parts
                outcomes = {"parked": p.parked, "completed": p.completed,
                            "answered_remote": p.answered_remote, "local": p.local}  # fmt: skip
                for outcome, n in outcomes.items():
                    parts.add_metric([outcome], n)
        return (up, trips, counted, parts)

    def _leases(self) -> Iterable[Metric]:
        """The singletons' lease: 1 on the node that holds it and runs them."""
        held = _gauge("fraudgate_lease_held", "This node holds the lease of a singleton", ["role"])
        for role, lease in sorted(self.gateway.leases.items()):
            held.add_metric([role], 1 if lease.held else 0)
        running = _gauge(
            "fraudgate_singletons_running",
            "The case workflow and the centre dispatcher run on this node (1) or not",
            [],
        )
        leader = self.gateway.leader
        if leader is not None:
            running.add_metric([], 0 if leader.since is None else 1)
        return (held, running)

    def _proxy(self) -> Iterable[Metric]:
        """[proxy] (docs/proxy.md): its counters, what it holds, its binds both ways."""
        events = _counter(
            "fraudgate_proxy_events",
            "A2P proxy events: submits by answer, forwarding, receipts, kept messages",
            ["side", "event"],
        )
        outstanding = _gauge(
            "fraudgate_proxy_outstanding",
            "Submits accepted and not settled (queue_limit bounds them), by state",
            ["state"],
        )
        upstream = _gauge("fraudgate_proxy_upstream_bound", "1 while bound to the SMSC", ["bind"])
        accounts = _gauge(
            "fraudgate_proxy_account_links", "Bound links of an aggregator account", ["account"]
        )
        proxy = self.gateway.proxy
        if proxy is not None:
            f = proxy.forwarder
            for side, stats in (("aggregator", proxy.stats), ("smsc", f.stats),
                                ("inbound", proxy.inbound.stats)):  # fmt: skip
                for field in dataclasses.fields(stats):
                    events.add_metric([side, field.name], getattr(stats, field.name))
            for state, n in f.holding().items():
                outstanding.add_metric([state], n)
            for s in f.supervisors:
                link = s.link
                upstream.add_metric([s.config.label], 1 if link and link.session.bound else 0)
            for account in sorted(proxy.accounts):
                links = proxy.inbound.links.get(account, [])
                accounts.add_metric([account], sum(1 for x in links if x.session.bound))
        return (events, outstanding, upstream, accounts)

    def _calls(self) -> Iterable[Metric]:
        """[calls] (docs/calls.md): records read, findings, what the analyzer tracks."""
        records = _counter(
            "fraudgate_calls_records",
            "Call records by source (inbox, stream) and outcome (new, duplicate, bad)",
            ["source", "outcome"],
        )
        files = _counter("fraudgate_calls_files", "CDR files by outcome", ["outcome"])
        found = _counter("fraudgate_calls_findings", "Call findings recorded, by kind", ["kind"])
        callbacks = _counter(
            "fraudgate_calls_wangiri_callbacks",
            "Calls from subscribers to a range flagged as Wangiri",
            [],
        )
        tracked = _gauge("fraudgate_calls_tracked", "State the call analyzer holds", ["what"])
        streams = _counter(
            "fraudgate_calls_stream_connections",
            "CDR stream connections by outcome (accepted, refused: bad token, turned_away: too "
            "many, idle_closed)",
            ["outcome"],
        )
        calls = self.gateway.calls
        if calls is not None:
            service = calls.service
            sources = []
            if calls.inbox is not None:
                i = calls.inbox
                sources.append(("inbox", i.records, i.duplicates, i.bad_rows))
            if calls.stream is not None:
                st = calls.stream
                sources.append(("stream", st.records, st.duplicates, st.bad_lines))
            for name, taken, duplicates, bad in sources:
                records.add_metric([name, "new"], taken - duplicates)
                records.add_metric([name, "duplicate"], duplicates)
                records.add_metric([name, "bad"], bad)
            if calls.inbox is not None:
                i = calls.inbox
                files.add_metric(["read"], i.files - i.failed_files)
                files.add_metric(["failed"], i.failed_files)
                files.add_metric(["skipped"], i.skipped_files)
                files.add_metric(["retried"], i.retried_files)
            for kind, n in sorted(service.found.items()):
                found.add_metric([kind], n)
            callbacks.add_metric([], service.analyzer.stats.callbacks)
            for what, n in service.analyzer.tracked.items():
                tracked.add_metric([what], n)
            tracked.add_metric(["unwritten_findings"], service.unwritten)
            if calls.stream is not None:
                st = calls.stream
                for outcome, n in (("accepted", st.connections), ("refused", st.refused),
                                   ("turned_away", st.turned_away),
                                   ("idle_closed", st.idle_closed)):  # fmt: skip
                    streams.add_metric([outcome], n)
        return (records, files, found, callbacks, tracked, streams)
