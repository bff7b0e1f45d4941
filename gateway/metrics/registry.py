"""`Metrics`: the Prometheus registry of one Gateway and what is pushed into it.

Never the process-wide default registry: tests run many gateways in one process, and a
registry per gateway is what its /metrics shows. Most values are pulled at scrape time by
collectors (collector.py, snapshot.py); only distributions are pushed (the inspection latency
from the SMS handlers, the store's batch sizes and commit times from the Recorder).

Extension point (docs/operations.md "Adding metrics"): `add_collector(fn)` registers a function
called at each scrape that returns metric families (e.g. `fraudgate_lease_held{role}` read from
a lease object); `gauge(...)` / `counter(...)` create ordinary prometheus_client objects in
this registry for code that prefers to set values as they change
(`fraudgate_shared_state_up`). Label values must come from bounded sets: never a number, an
IIN or a text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client.core import Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

CollectFn = Callable[[], Iterable[Metric]]

# seconds from an SMS's last part to its answer: the inspection, the group commit, the answer
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


class _Functions(Collector):
    """The gateway's own collectors (`core`, set once per run) and the functions given to
    `Metrics.add_collector`, called at each scrape."""

    def __init__(self) -> None:
        self.core: list[CollectFn] = []
        self.functions: list[CollectFn] = []

    def collect(self) -> Iterable[Metric]:
        for fn in [*self.core, *self.functions]:
            yield from fn()


class Metrics:
    """One gateway's registry; `exposition()` is the body of /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.registry)  # CPU, memory, open files of this process
        self.inspection_seconds = Histogram(
            "fraudgate_inspection_duration_seconds",
            "Seconds from an SMS's last part to its answer (inspection, commit, response)",
            ["bind"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "fraudgate_store_batch_size",
            "SMS per committed group-commit batch",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.commit_seconds = Histogram(
            "fraudgate_store_commit_duration_seconds",
            "Seconds a committed batch took in the database",
            buckets=COMMIT_BUCKETS,
            registry=self.registry,
        )
        self._functions = _Functions()
        self.registry.register(self._functions)
        self.url = ""  # http://host:port of /metrics once served ([metrics] listen)

    def set_core(self, functions: Sequence[CollectFn]) -> None:
        """The gateway's own collectors (gateway.metrics.server.build_metrics), replacing those
        of a previous run of the same Gateway."""
        self._functions.core = list(functions)

    def add_collector(self, fn: CollectFn) -> None:
        """`fn()` is called at every scrape and returns metric families (GaugeMetricFamily,
        CounterMetricFamily...): values read from objects that already count."""
        self._functions.functions.append(fn)

    def gauge(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Gauge:
        """A gauge in this gateway's registry, set by its owner as the value changes."""
        return Gauge(name, documentation, labels, registry=self.registry)

    def observe_batch(self, size: int, seconds: float) -> None:
        """Recorder.on_batch: one committed batch."""
        self.batch_size.observe(size)
        self.commit_seconds.observe(seconds)

    def latency_observer(self, bind: str) -> Callable[[float], None]:
        """GatewayHandler.on_latency for the bind `bind`."""
        return self.inspection_seconds.labels(bind=bind).observe

    def family_names(self) -> set[str]:
        """The names of every metric family exposed (samples or not), as Prometheus sees
        them: a counter's with `_total`, a histogram's with `_bucket`, `_sum`, `_count`."""
        names: set[str] = set()
        for family in self.registry.collect():
            for sample in family.samples:
                names.add(sample.name)
            if family.type == "counter":
                names.add(family.name + "_total")
            elif family.type == "histogram":
                names.update(family.name + s for s in ("_bucket", "_sum", "_count"))
            else:
                names.add(family.name)
        return names

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
