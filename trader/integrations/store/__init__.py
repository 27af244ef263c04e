"""Durable state: the `Store` protocol (`base`), its SQLite and PostgreSQL implementations (`sqlite`, `postgres`)
over one shared mapping of rows to records (`rows`, `sql`), and the versioned `migrations/`."""

from trader.integrations.store.base import (
    DailyPnlRecord as DailyPnlRecord,
)
from trader.integrations.store.base import (
    DuplicateKeyError as DuplicateKeyError,
)
from trader.integrations.store.base import (
    EquitySample as EquitySample,
)
from trader.integrations.store.base import (
    IntentRecord as IntentRecord,
)
from trader.integrations.store.base import (
    IntentState as IntentState,
)
from trader.integrations.store.base import (
    OpportunityRecord as OpportunityRecord,
)
from trader.integrations.store.base import (
    OrderEventRecord as OrderEventRecord,
)
from trader.integrations.store.base import (
    OrderRecord as OrderRecord,
)
from trader.integrations.store.base import (
    PaperWalletRecord as PaperWalletRecord,
)
from trader.integrations.store.base import (
    RiskEventRecord as RiskEventRecord,
)
from trader.integrations.store.base import (
    SnipedMarket as SnipedMarket,
)
from trader.integrations.store.base import (
    Store as Store,
)
from trader.integrations.store.base import (
    StoreError as StoreError,
)
from trader.integrations.store.base import (
    StoreScope as StoreScope,
)
from trader.integrations.store.base import (
    StoreScopeMismatch as StoreScopeMismatch,
)
from trader.integrations.store.base import (
    StoreStatistics as StoreStatistics,
)
from trader.integrations.store.base import (
    TradeRecord as TradeRecord,
)
from trader.integrations.store.base import (
    TradingMode as TradingMode,
)
from trader.integrations.store.sqlite import SqliteStore as SqliteStore
from trader.integrations.store.sqlite import open_sqlite_store as open_sqlite_store
