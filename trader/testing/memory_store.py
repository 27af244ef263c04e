"""`MemoryStore`, the in-memory `Store`, for tests (it lives in `trader.integrations.store.memory`: backtests keep
their records in it too)."""

from trader.integrations.store.memory import MemoryStore

__all__ = ["MemoryStore"]
