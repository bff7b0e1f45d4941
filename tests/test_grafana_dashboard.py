"""The Grafana dashboard (docs/grafana-fraudgate.json) is a valid dashboard, every PromQL
expression in it parses (`promtool check rules`) and names only metrics the gateway exposes."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from fixtures_services import require_binary

from gateway.config import GatewayConfig
from gateway.daemon import Gateway
from gateway.metrics.server import build_metrics
from gateway.pipeline.recorder import Recorder
from gateway.store import Store

DASHBOARD = Path(__file__).resolve().parent.parent / "docs" / "grafana-fraudgate.json"
# Grafana's variables, as a query would see them once substituted
VARIABLES = {"$__rate_interval": "5m", "$bind": ".*"}


def _dashboard() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return doc


def _panels(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in doc["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))  # collapsed rows hold their panels
    return out


def _expressions(doc: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in _panels(doc) for t in p.get("targets", []) if "expr" in t]


def test_the_dashboard_is_well_formed() -> None:
    doc = _dashboard()
    assert isinstance(doc["schemaVersion"], int) and doc["schemaVersion"] >= 36
    assert doc["title"] and doc["uid"]
    inputs = {i["name"]: i for i in doc["__inputs"]}
    assert inputs["DS_PROMETHEUS"]["pluginId"] == "prometheus"
    panels = _panels(doc)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for p in panels:
        grid = p["gridPos"]
        assert {"h", "w", "x", "y"} <= set(grid) and grid["x"] >= 0 and grid["x"] + grid["w"] <= 24
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${DS_PROMETHEUS}"
    for var in doc["templating"]["list"]:
        assert var["datasource"]["uid"] == "${DS_PROMETHEUS}"
    # panels do not overlap: no two share a grid cell
    cells: set[tuple[int, int]] = set()
    for p in panels:
        g = p["gridPos"]
        mine = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not cells & mine, p["title"]
        cells |= mine


def test_every_expression_parses(tmp_path: Path) -> None:
    promtool = require_binary("promtool", "prometheus", ["/usr/bin/promtool"])
    exprs = _expressions(_dashboard())
    assert len(exprs) >= 20
    rules = []
    for i, expr in enumerate(exprs):
        for name, value in VARIABLES.items():
            expr = expr.replace(name, value)
        assert "$" not in expr, f"an unknown variable in {expr}"
        rules.append({"record": f"dashboard:expr_{i}", "expr": expr})
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}, indent=1))
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(rules)} rules found" in done.stdout


async def test_every_metric_named_is_exposed(tmp_path: Path) -> None:
    """The names in the expressions are among the metric families of a gateway's registry
    (every family is exposed, with samples once its component runs)."""
    cfg = GatewayConfig(data_dir=tmp_path)
    async with await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'g.db'}") as store:
        gateway = Gateway(cfg)
        build_metrics(gateway, store, Recorder(store))
        assert gateway.metrics is not None
        exposed = gateway.metrics.family_names()
    named = {n for e in _expressions(_dashboard()) for n in re.findall(r"\bfraudgate_\w+", e)}
    assert len(named) >= 30
    assert not named - exposed, f"not exposed by the gateway: {sorted(named - exposed)}"
    assert "fraudgate_sms_total" in exposed and "fraudgate_sms" not in named
