"""The engine's metrics as Prometheus sees them: a running engine's real `/metrics` passes `promtool check metrics`,
the alert rules pass `promtool check rules` and their unit tests, the Grafana dashboard and the rules query only
metrics the engine exports, and a real Prometheus server scraping a running engine evaluates every rule and answers
every dashboard query.

promtool comes with Prometheus (`apt-get install prometheus`; `.ci/run` installs it). Without it these tests skip,
except under CI (`CI` set), where a missing promtool is a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from tests.engine.test_app import running, settings, wait_for

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
RULE_TESTS = DEPLOY / "prometheus" / "alerts.test.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "trader.json"
README = DEPLOY.parent / "README.md"
#: Series Prometheus itself makes from a scrape, not the engine.
PROMETHEUS_OWN = {"up"}


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail("promtool is missing: .ci/run installs it (apt-get install prometheus)")
        pytest.skip("promtool is missing (apt-get install prometheus)")
    return found


def queried_metrics() -> dict[str, set[str]]:
    """Every `trader_*` (and Prometheus' own) metric name in the dashboard's and the rules' expressions, by file."""
    expressions = {
        DASHBOARD.name: [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]],
        RULES.name: re.findall(r"^\s*expr:\s*(.+)$", RULES.read_text(), re.M),
    }
    names: dict[str, set[str]] = {}
    for source, exprs in expressions.items():
        assert exprs, f"no expressions found in {source}"
        found = set()
        for expr in exprs:
            found |= set(re.findall(r"\b(trader_[a-z0-9_]+)", expr))
            found |= {name for name in PROMETHEUS_OWN if re.search(rf"\b{name}\b", expr)}
        names[source] = found
    return names


def exported_names(exposition: str) -> set[str]:
    """The series names a scrape declares (a labelled family with no series yet included), as queries name them."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}
    names = set()
    for family in text_string_to_metric_families(exposition):
        names |= {family.name + suffix for suffix in suffixes.get(family.type, ("",))}
        names |= {sample.name for sample in family.samples}
    return names


@pytest.mark.timeout(120)  # end to end: a few seconds, more under load
async def test_a_running_engines_metrics_pass_promtool_and_cover_the_dashboard_and_rules(tmp_path: Path) -> None:
    tool = promtool()
    async with running(settings(tmp_path)) as run:
        execution = run.engine.execution  # type: ignore[attr-defined]
        market_data = run.engine.market_data  # type: ignore[attr-defined]
        await wait_for(
            lambda: execution.statistics().orders.fills >= 1 and market_data.statistics().feed_latency.count >= 1
        )
        exposition = (await run.http.get("/metrics")).text

    lint = await trio.run_process(
        [tool, "check", "metrics"], stdin=exposition.encode(), capture_stdout=True, capture_stderr=True, check=False
    )
    problems = (lint.stdout + lint.stderr).decode()
    assert lint.returncode == 0, problems
    assert not problems.strip(), problems  # promtool prints its lint findings

    names = exported_names(exposition)
    # Units and percentiles as Prometheus wants them: seconds, and histograms rather than precomputed quantiles.
    assert not [n for n in names if re.search(r"_(ms|millis|milliseconds|p\d+)(_|$)", n)]
    assert "trader_md_feed_latency_seconds_bucket" in names
    assert "trader_tick_to_trade_seconds_bucket" in names
    # Reasons are a label of their own, never packed into another label's value.
    assert not re.search(r'outcome="[a-z_]+:', exposition)
    assert re.search(r"^trader_orders_submitted_total [1-9]", exposition, re.M)

    # The README's list is the engine's: every family it exports, and nothing else.
    section = README.read_text().split("## Metrics, dashboard and alerts", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `(trader_[a-z0-9_]+)` \|", section, re.M))
    families = {
        f.name + ("_total" if f.type == "counter" else "")
        for f in text_string_to_metric_families(exposition)
        if not f.name.endswith("_created")  # the client's creation timestamps of counters and histograms
    }
    assert sorted(families - listed) == [], "exported but not in the README's list"
    assert sorted(listed - families) == [], "in the README's list but not exported"

    for source, queried in queried_metrics().items():
        missing = sorted(name for name in queried - PROMETHEUS_OWN if name not in names)
        assert not missing, f"{source} queries metrics the engine does not export: {missing}"


def test_the_dashboard_and_the_rules_query_metrics_at_all() -> None:
    """The name check above is not vacuous: the dashboard and the rules query the alerts' metrics."""
    queried = queried_metrics()
    for needed in (
        "trader_md_max_book_age_seconds",
        "trader_breaker_state",
        "trader_trading_state",
        "trader_daily_pnl_usd",
        "trader_arb_residuals_total",
        "trader_store_available",
        "trader_heartbeat_lapsed",
    ):
        assert needed in queried[RULES.name], needed
    assert "trader_tick_to_trade_seconds_bucket" in queried[DASHBOARD.name]
    grid = [p["gridPos"] for p in json.loads(DASHBOARD.read_text())["panels"]]
    cells = [(x, y) for g in grid for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])]
    assert len(cells) == len(set(cells)), "dashboard panels overlap"


def test_the_alert_rules_pass_promtool_and_their_unit_tests() -> None:
    tool = promtool()
    checked = subprocess.run([tool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 10 rules found" in checked.stdout
    config = subprocess.run(
        [tool, "check", "config", "prometheus.yml"], capture_output=True, text=True, check=False, cwd=RULES.parent
    )
    assert config.returncode == 0, config.stdout + config.stderr  # the compose Prometheus' config, with its rules
    tested = subprocess.run(
        [tool, "test", "rules", RULE_TESTS.name], capture_output=True, text=True, check=False, cwd=RULE_TESTS.parent
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.timeout(120)  # an engine and a Prometheus server: 10-20 s, more under load
async def test_prometheus_scrapes_a_running_engine_and_evaluates_the_dashboard_and_the_rules(tmp_path: Path) -> None:
    """The real server, as the compose file runs it: every rule evaluates without error and every dashboard query
    is valid PromQL that Prometheus answers, on the engine's real series."""
    promtool()  # the same package brings the server
    server = shutil.which("prometheus")
    if server is None:
        pytest.skip("prometheus is missing (apt-get install prometheus)")
    port = _free_port()
    shutil.copy(RULES, tmp_path / RULES.name)
    async with running(settings(tmp_path)) as run:
        target = urlsplit(str(run.engine.http_url)).netloc  # type: ignore[attr-defined]
        (tmp_path / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"rule_files: [{RULES.name}]\n"
            f"scrape_configs: [{{job_name: trader, static_configs: [{{targets: ['{target}']}}]}}]\n"
        )
        command = [
            server,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
        async with trio.open_nursery() as nursery:
            process = await nursery.start(
                partial(trio.run_process, command, capture_stdout=True, capture_stderr=True, check=False)
            )
            try:
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}/api/v1") as api:
                    rules = await _evaluated_rules(api)
                    assert [
                        (r["name"], r["health"], r.get("lastError", "")) for r in rules if r["health"] != "ok"
                    ] == []
                    assert len(rules) == 10
                    exprs = [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for t in p["targets"]]
                    answered = [await _query(api, expr) for expr in exprs]
                    errors = [
                        (expr, status) for expr, (status, _) in zip(exprs, answered, strict=True) if status != "success"
                    ]
                    assert errors == []
                    # Nearly every query has data already (a labelled family, such as refusals, may have no series yet).
                    empty = [expr for expr, (_, series) in zip(exprs, answered, strict=True) if not series]
                    assert len(empty) <= len(exprs) // 10, empty
            finally:
                process.terminate()


async def _evaluated_rules(api: httpx.AsyncClient) -> list[dict[str, object]]:
    """The rules once Prometheus has scraped the engine and evaluated each of them at least once."""
    with trio.fail_after(60):
        while True:
            try:
                query = {"query": 'count_over_time(up{job="trader"}[1m])'}  # rates need a few scrapes
                up = (await api.get("/query", params=query)).json()["data"]["result"]
                groups = (await api.get("/rules")).json()["data"]["groups"]
            except (httpx.TransportError, ValueError, KeyError):  # still starting (no answer, or "not ready" text)
                up, groups = [], []
            rules = [r for g in groups for r in g["rules"]]
            evaluated = rules and all(not str(r["lastEvaluation"]).startswith("0001") for r in rules)
            if up and int(up[0]["value"][1]) >= 3 and evaluated:
                return rules
            await trio.sleep(0.5)


async def _query(api: httpx.AsyncClient, expr: str) -> tuple[str, list[object]]:
    answer = (await api.get("/query", params={"query": expr})).json()
    return answer["status"], answer.get("data", {}).get("result", [])
