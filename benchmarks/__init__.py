"""Benchmarks run by ``make bench``: latency on loopback, round trips, catch-up, reports,
replay throughput; ``python -m benchmarks.<name>`` runs one.

``python -m`` puts the working directory ahead of PYTHONPATH; a bench asked to measure another
tree (``PYTHONPATH=/work/before python -m benchmarks.quiet``) must import that tree's product,
so a PYTHONPATH entry that holds a ``trader`` package goes first. The benches themselves are
this package's, already imported from here.
"""

import os
import sys

for _entry in reversed([p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]):
    if os.path.isdir(os.path.join(_entry, "trader")):
        sys.path.insert(0, os.path.abspath(_entry))
