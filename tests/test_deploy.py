"""The deployment files under deploy/ and the operator scripts: they are what they say.

The compose file is checked by a compose tool when one is installed (`docker-compose config`, which validates it
against the compose schema; `.ci/run` installs it); the rest needs nothing but the files.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"


def _ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false")


def test_the_compose_file_is_valid_compose() -> None:
    tool = shutil.which("docker-compose")
    if tool is None:
        if _ci():
            pytest.fail("docker-compose is missing: .ci/run installs it")
        pytest.skip("docker-compose is missing (apt-get install docker-compose)")
    checked = subprocess.run(
        [tool, "-f", str(COMPOSE), "config", "--services"], capture_output=True, text=True, check=False, cwd=DEPLOY
    )
    assert checked.returncode == 0, checked.stderr
    assert sorted(checked.stdout.split()) == ["grafana", "postgres", "prometheus", "redis", "trader"]


def test_the_compose_file_mounts_files_that_exist_and_wires_the_parts_together() -> None:
    text = COMPOSE.read_text()
    mounts = re.findall(r"^\s*- (\./[^:]+):", text, re.M)
    assert len(mounts) == 5
    for mount in mounts:
        assert (DEPLOY / mount).exists(), mount
    # The engine: the sim, its store in the compose PostgreSQL, its events on the compose Redis, an init for signals.
    assert 'command: ["run", "--venue", "sim"]' in text
    assert "TRADER_DATABASE_URL: postgresql://trader:trader@postgres:5432/trader" in text
    assert "TRADER_REDIS_URL: redis://redis:6379/0" in text
    assert "init: true" in text
    # Prometheus scrapes the engine's service and loads the rules the compose file mounts.
    prometheus = (DEPLOY / "prometheus" / "prometheus.yml").read_text()
    assert 'targets: ["trader:8080"]' in prometheus
    assert "- alerts.yml" in prometheus
    # Grafana's data source is the one the dashboard names.
    datasource = (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "trader.json").read_text())
    uids = {p["datasource"]["uid"] for p in dashboard["panels"]}
    assert uids == {"prometheus"}
    assert "uid: prometheus" in datasource
    assert "url: http://prometheus:9090" in datasource


def test_the_systemd_unit_runs_the_engine_and_drains_on_stop() -> None:
    unit = (DEPLOY / "systemd" / "trader.service").read_text()
    settings = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#"))
    assert settings["ExecStart"].endswith("/trader run --venue sim")
    assert settings["KillSignal"] == "SIGTERM"
    assert int(settings["TimeoutStopSec"]) >= 30
    assert settings["RestartPreventExitStatus"] == "2"  # a configuration error is not retried
    assert settings["User"] == "trader"
    verify = shutil.which("systemd-analyze")
    if verify is not None:  # its only complaint may be the absent /opt/trader install
        checked = subprocess.run(
            [verify, "verify", str(DEPLOY / "systemd" / "trader.service")], capture_output=True, text=True, check=False
        )
        problems = [line for line in checked.stderr.splitlines() if "/opt/trader/.venv/bin/trader" not in line]
        assert problems == [], checked.stderr


@pytest.mark.parametrize(("command", "flag"), [("reconcile", "--settle-secs"), ("flatten", "--max-slippage")])
def test_the_scripts_are_the_subcommands(command: str, flag: str, tmp_path: Path) -> None:
    """A flag only that subcommand has, with a bad value: its own usage error and exit status 2 come back."""
    script = ROOT / "scripts" / command
    refused = subprocess.run([script, flag, "lots"], capture_output=True, text=True, check=False, cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.startswith(f"trader: argument {flag}: "), refused.stderr
    assert f"`trader {command} --help`" in refused.stderr
