"""Run every benchmark in turn and print their figures."""

import os
import subprocess
import sys

BENCHMARKS = ["bench.site", "bench.labelling", "bench.aws_pipeline"]


def main() -> None:
    chosen = sys.argv[1:] or BENCHMARKS
    for module in chosen:
        # Each runs in its own process: they set Django up differently.
        subprocess.run([sys.executable, "-m", module], check=True, env=os.environ)


if __name__ == "__main__":
    main()
