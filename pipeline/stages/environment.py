"""Stage environment: record the computing environment a run's numbers come from.

Writes one JSON file (:class:`pipeline.provenance.EnvironmentRecord`): Python, CPU model,
the BLAS/LAPACK of NumPy and torch with the kernels they chose, torch's threads, the
releases of the scientific stack, and the packages installed at another release than
``--constraints`` pins. ``--threads`` sets the threads as the relax jobs set theirs
(:func:`pipeline.screen.modes.use_cpu_threads`), so the record shows what they ran with.
Run ``python -m pipeline.stages.environment --help``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline.errors import PipelineInputError, exit_on_input_error
from pipeline.provenance import environment_record, write_environment
from pipeline.screen.modes import use_cpu_threads


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.stages.environment",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--threads", type=int, required=True, help="torch and BLAS threads, as the relax jobs"
    )
    parser.add_argument(
        "--constraints", type=Path, default=None, help="the pinned releases (constraints.txt)"
    )
    parser.add_argument("--out", type=Path, required=True, help="environment record (.json)")
    return parser


@exit_on_input_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.constraints is not None and not args.constraints.is_file():
        raise PipelineInputError(f"--constraints {args.constraints}: no such file")
    use_cpu_threads(args.threads)
    record = environment_record(args.constraints)
    write_environment(record, args.out)
    print(
        json.dumps(
            {
                "cpu_model": record.cpu_model,
                "torch_threads": record.torch_threads,
                "differs_from_lock": len(record.differs_from_lock),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
