"""Benchmarks: `python -m bench NAME`. Each prints JSON lines; the last line carries the headline numbers."""
