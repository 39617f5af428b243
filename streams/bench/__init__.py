"""Benchmarks: programs that print figures (`minhu bench`, `minhu bench kafka`, `minhu bench
replay`), never timed tests."""
