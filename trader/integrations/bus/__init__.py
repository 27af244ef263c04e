"""The event bus: `EventBus` and the versioned JSON events (`base`), the in-process `MemoryBus` (the default),
the Redis bus (`trader.integrations.bus.redis`, imported on demand) and the engine-side publishers (`publish`)."""

from trader.integrations.bus.base import EVENT_VERSION as EVENT_VERSION
from trader.integrations.bus.base import BookSummary as BookSummary
from trader.integrations.bus.base import BusEvent as BusEvent
from trader.integrations.bus.base import BusStatistics as BusStatistics
from trader.integrations.bus.base import EmergencyStop as EmergencyStop
from trader.integrations.bus.base import EventBus as EventBus
from trader.integrations.bus.base import EventKind as EventKind
from trader.integrations.bus.base import bus_event as bus_event
from trader.integrations.bus.base import channel_name as channel_name
from trader.integrations.bus.base import decode_event as decode_event
from trader.integrations.bus.base import encode_event as encode_event
from trader.integrations.bus.memory import MemoryBus as MemoryBus
from trader.integrations.bus.publish import BusPublisher as BusPublisher
from trader.integrations.bus.publish import run_book_summaries as run_book_summaries
