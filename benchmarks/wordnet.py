"""WordNet reconstruction benchmark (Nickel & Kiela 2017): mean rank and MAP per representation and
dimension, next to the published figures and a Euclidean baseline trained by the same code, with the time
at which a target MAP was first reached.

    python benchmarks/wordnet.py                                  # mammals, 5-D: poincare, lorentz, euclidean
    python benchmarks/wordnet.py --dataset mammals --manifold poincare --threads 1 --json
    python benchmarks/wordnet.py --dataset nouns --dim 10 --manifold poincare --threads 2 \\
        --checkpoint-dir runs --metrics-dir runs --max-seconds 900      # resumable: add --resume

Same options as ``hyperbolic bench wordnet`` (``embed.bench_wordnet``).
"""

import argparse
import os
import platform
import sys

from embed.bench_wordnet import add_arguments, run_from_args
from embed.cli import load_representations


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/wordnet.py", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    load_representations()
    if not args.json:
        print(f"Command: `python benchmarks/wordnet.py {' '.join(sys.argv[1:] if argv is None else argv)}`  ")
        print(f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}\n")
    return run_from_args(args)


if __name__ == "__main__":
    sys.exit(main())
