"""Benchmarks of the service: run each with ``python -m benchmarks.<name>``; never part of CI."""
