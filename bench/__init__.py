"""Benchmarks (run with ``make bench``); figures are recorded in bench/RESULTS.md."""
