"""Optimizer-step throughput: optimlab fused/flat/reference vs torch for-loop/foreach/fused.

The same code as `optimlab bench step` (optimlab/throughput.py); see docs/fused.md.

    python benchmarks/step_throughput.py --out benchmarks/results/step_throughput-<machine>-cpu.json
"""

import argparse
import sys

from optimlab.commands.bench import add_step_arguments, run_step

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_step_arguments(parser)
    sys.exit(run_step(parser.parse_args()))
