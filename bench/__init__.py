"""Benchmark harness: `mirror` against the reference registry (CNCF Distribution 2.8).

`python -m bench [--quick] [--only 1,3] [--out BENCHMARKS.md]` starts both servers on
loopback with equivalent settings, a third registry as the shared upstream of both
pull-through caches, builds its own images, runs every workload alternately on the two
(median of N rounds) and prints one table of results against the project's bars.
"""
