"""One in-process benchmark in a process of its own: ``python -m benchmarks._one NAME [--quick]``.

Writes its result (rows, or rows and curves) pickled to stdout; what it prints goes
to stderr. ``make bench`` runs each
so, under a time limit: a benchmark that hangs or crashes becomes a reported error,
not a stalled run, and a large heap left by one never slows the next.
"""

from __future__ import annotations

import contextlib
import importlib
import pickle
import sys


def main() -> None:
    name, quick = sys.argv[1], "--quick" in sys.argv
    module = importlib.import_module(f"benchmarks.{name}")
    # Progress lines go to stderr: stdout carries only the pickled result.
    with contextlib.redirect_stdout(sys.stderr):
        result = module.run(quick)
    sys.stdout.flush()
    sys.stdout.buffer.write(pickle.dumps(result))


if __name__ == "__main__":
    main()
