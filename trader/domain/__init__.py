"""The pure, synchronous domain model: no trio, no I/O, no logging, no wire types.

numbers (exact prices/sizes/amounts, tick grid), book (OrderBook, PriceHistory), feed (a market-channel frame,
parsed: BookSnapshot, PriceChange, LastTrade, ..., ParsedFrame), market (FeeSchedule, Market, NegRiskEvent), enums,
intents (OrderIntent, ArbIntent), events (frozen order/trade/risk events, reason codes), orders (Order and Trade
with their transition tables), positions (Position, Portfolio), errors (InvalidTransition, InvariantViolation: bugs,
never control flow).
"""
