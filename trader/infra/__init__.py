"""Floor 0: generic helpers every other floor may use (and that use nothing of the project's above the floor).

- `backoff`: exponential backoff with jitter, and the counter that resets it after a healthy stretch;
- `ticks`: a drift-free periodic ticker on trio's clock;
- `logging`: structlog set up once per process (console on a terminal, JSON otherwise), secrets scrubbed;
- `groups`: collapsing the single-member exception groups that nurseries wrap around a caller's own exception;
- `secrets`: recognising and scrubbing secret-looking fields in mappings bound for logs, events and the store.
"""
