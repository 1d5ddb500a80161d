"""PINNED GRADIENTS: optimizer-step throughput with gradients left in place between steps.

optimlab fused/flat/reference vs torch for-loop/foreach/fused, each step alone, the gradients
assigned once and kept (as with zero_grad(set_to_none=False)); the "fresh grads" row assigns new
gradient tensors before each step. The loop most users write (zero_grad(), backward, step) is
measured by benchmarks/real_loop.py, whose figures come first in docs/fused.md. The same code as
`optimlab bench step` (optimlab/throughput.py).

    python benchmarks/step_throughput.py --out benchmarks/results/step_throughput-<machine>-cpu.json
"""

import argparse
import sys

from optimlab.commands.bench import add_step_arguments, run_step

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_step_arguments(parser)
    sys.exit(run_step(parser.parse_args()))
