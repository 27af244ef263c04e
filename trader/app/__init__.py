"""Floor 4, the composition root: `trader run` assembled from the parts below, and its shutdown order.

| module | what |
|---|---|
| `supervisor` | `run_trader`: the nursery tree (sinks, venue side, core, operator services), the shutdown order |
| `sinks` | `open_sinks`: the store, the intent journal, the write-behind store, and the outputs (bus, Redis, Slack) |
| `venue` | `open_venue`: the sim, market data, discovery, the live or paper venue, the restart reconciliation |
| `core` | `open_core`: order manager, strategies, risk gate, execution |
| `control` | `Control`: the frozen facade `/status`, `/ready` and the admin routes see; `RunningEngine` |
| `dashboard` | `GET /`: the web page, its JSON and its server-sent events (Starlette, mounting the operator routes) |
| `charts` | inline SVG charts (line with drawdown, horizontal bars) from exact decimals, no script |
| `history` | fills and realized PnL replayed from the store; `trader pnl`, `trader trades`, `trader report` |
| `alerts` | risk events, disconnect storms, daily summaries and the store gate, wired to the outputs |
| `metrics` | the Prometheus collectors, read from the parts' `statistics()` at scrape time |
| `summary` | `RunSummary`, printed at exit |
| `config` | `Settings`: every section of the configuration (loaded from the environment by `trader.settings`) |
"""

from trader.app.control import Control as Control
from trader.app.control import RunningEngine as RunningEngine
from trader.app.summary import RunSummary as RunSummary
from trader.app.supervisor import run_trader as run_trader

__all__ = ["Control", "RunSummary", "RunningEngine", "run_trader"]
