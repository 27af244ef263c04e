"""`trader`: a trading engine for the Polymarket CLOB, on Trio."""

__version__ = "0.1.0"
__all__ = ["__version__"]
