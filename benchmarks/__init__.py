"""Benchmarks run by ``make bench``: paper-engine latency on loopback, replay throughput."""
