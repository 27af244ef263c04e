"""`python -m bench ha`: the same as `python -m bench failover` (active/standby takeovers over repeated kill -9)."""

from __future__ import annotations

from bench.failover import main

__all__ = ["main"]
