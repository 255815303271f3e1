"""``python -m connectors.datagen OUT_DIR [--people N] [--seed S]``: write the partner DBs."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from connectors.datagen import generate


def main(argv: list[str] | None = None) -> int:
    """Generate the databases, reporting progress and timing on stderr."""
    parser = argparse.ArgumentParser(prog="python -m connectors.datagen", description=__doc__)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20261125)
    args = parser.parse_args(argv)

    live = sys.stderr.isatty()

    def progress(stage: str, done: int, total: int) -> None:
        if live or done == total:
            print(f"\r{stage:>16}: {done:>7}/{total}", end="" if done < total else "\n",
                  file=sys.stderr)

    started = time.perf_counter()
    paths = generate(args.out_dir, seed=args.seed, people=args.people, progress=progress)
    elapsed = time.perf_counter() - started
    for partner, path in paths.items():
        print(f"{partner}: {path}")
    print(f"generated {args.people} people in {elapsed:.2f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
