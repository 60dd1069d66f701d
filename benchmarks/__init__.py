"""Benchmarks of flame_transit against peer implementations (``python -m benchmarks``).

Not part of the test suite; ``tests/test_benchmarks_smoke.py`` keeps the LBS part from rotting.
Every comparison runs ours and the peer interleaved in one process (round-robin, alternating
order), so machine load hits both alike; results are medians and per-round paired ratios.
"""
