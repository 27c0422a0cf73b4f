"""Stage encode (graph): the augmented dataset as periodic-graph nodes with band-gap labels.

The graph diffusion model (:mod:`pipeline.models.graph_diffusion`) trains on this file.
Edges are not stored: they follow from the positions, the lattice and the model's cutoff
(:mod:`pipeline.represent.graph`), and the model rebuilds them for every noisy crystal.
One ``.npz`` holds, for ``N`` crystals with ``M`` atoms in all,

* ``species`` ``(M,)`` index into ``elements``, ``frac_coords`` ``(M, 3)``,
  ``num_atoms`` ``(N,)`` (crystal ``k``'s atoms follow those of crystals ``0..k-1``),
  ``lattice`` ``(N, 3, 3)`` (rows are vectors, Å);
* ``band_gap`` ``(N,)``: PBE band gaps (eV) predicted by the shipped CGCNN models
  (:class:`pipeline.screen.predictors.CGCNNPredictor`, via
  :func:`pipeline.datasets.cgcnn_labels.teacher_band_gaps`; 0 where its classifier calls
  the crystal a metal). The bundled data have no DFT gaps, so CGCNN is the teacher of the
  model's band-gap predictor. An augmented copy (supercell, translation, swap of axes)
  has the gap of its parent, which CGCNN predicts once;
* ``ids``, ``parents``, ``elements`` (:func:`pipeline.formats.load_graph_dataset`).

Run ``python -m pipeline.stages.encode_graph --help``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from pipeline.chemsys import ChemicalSystem
from pipeline.datasets.cgcnn_labels import teacher_band_gaps
from pipeline.errors import exit_on_input_error
from pipeline.formats import save_graph_dataset
from pipeline.records import read_records
from pipeline.represent.graph import graph_dataset
from pipeline.settings import setting_argument


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.stages.encode_graph",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dataset", type=Path, required=True, help="augmented dataset (.json.gz)")
    setting_argument(parser, "--chemsys", "chemsys", help="chemical system, e.g. Mg-Mn-O")
    parser.add_argument(
        "--threads",
        type=int,
        required=True,
        help="CPU threads for torch (CGCNN's small layers run fastest on one)",
    )
    parser.add_argument("--out", type=Path, required=True, help="graph dataset (.npz)")
    return parser


@exit_on_input_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    records = read_records(args.dataset)
    system = ChemicalSystem.parse(args.chemsys)
    data = graph_dataset(records, system, teacher_band_gaps(records))
    save_graph_dataset(data, args.out)
    print(
        json.dumps(
            {
                "structures": len(data),
                "atoms": int(data.num_atoms.sum()),
                "band_gap_mean": round(float(data.band_gap.mean()), 4),
                "metals": int((data.band_gap == 0).sum()),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
