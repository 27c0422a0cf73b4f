"""Each potential's hull against experiment, and how often the potentials agree.

Prints ONE JSON line per potential (chgnet, sevennet, m3gnet):

* the hull's formation-enthalpy MAE against the measured enthalpies pymatgen ships
  (eV/atom; fitted oxides counted by their leave-one-out residual), with the residuals;
* the experimentally stable phases (on the hull of the measured enthalpies) that sit above
  the potential's hull, and by how much;
* the same with the O2 molecule as the oxygen reference (``molecule``), to show what the
  fitted reference (``screen.oxygen_reference``) changes;
* with ``--results`` (a run folder with ``results/screen/relax/<potential>/relaxed.json.gz``),
  the pairwise agreement of the potentials' verdicts on that run's relaxed candidates: each
  potential's energy at the relaxed geometry (the run's second opinion where it has one, a
  single point computed here otherwise) on its own hull.

The hulls: the Mg-Mn-O reference phases relaxed with each potential, shipped in
``resources/thermo`` (``--references-dir``); or, with ``--cif-dir``, the structures of a CIF
folder (e.g. ``../shared/data/cif_sets/Ba-Mn-O``) of the elements and of every compound with a
measured enthalpy, relaxed here with each potential (elements missing from the folder built by
ASE).

    python bench/thermo_check.py
    python bench/thermo_check.py --cif-dir ../shared/data/cif_sets/Ba-Mn-O --potentials chgnet
    python bench/thermo_check.py --results /path/to/run
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.datasets.cif_dir import load_cif_dir  # noqa: E402
from pipeline.datasets.elements import elemental_reference  # noqa: E402
from pipeline.errors import PipelineInputError, exit_on_input_error  # noqa: E402
from pipeline.records import CrystalRecord, read_records  # noqa: E402
from pipeline.screen.convex_hull import potential_name  # noqa: E402
from pipeline.screen.criteria import Criteria  # noqa: E402
from pipeline.screen.experimental_check import check_hull  # noqa: E402
from pipeline.screen.hull_agreement import e_above_own_hull, pairwise_agreement  # noqa: E402
from pipeline.screen.modes import relax_records, single_point_records  # noqa: E402
from pipeline.screen.potential_names import POTENTIALS  # noqa: E402
from pipeline.screen.potentials import PotentialSpec, describe  # noqa: E402
from pipeline.screen.reference_hull import lowest_distinct_per_formula  # noqa: E402
from pipeline.screen.relaxation import RelaxSettings  # noqa: E402
from pipeline.screen.thermochemistry import measured_formation_enthalpies  # noqa: E402
from pipeline.settings import default  # noqa: E402

REFERENCES_DIR = REPO / "resources" / "thermo"


def shipped_references(directory: Path, potential: str) -> list[CrystalRecord]:
    """The relaxed reference phases of ``potential`` in ``directory`` (``*_<potential>-*``)."""
    found = sorted(directory.glob(f"*_{potential}-*.json.gz"))
    if not found:
        raise PipelineInputError(f"no relaxed references of {potential} in {directory}")
    return read_records(found[0])


def with_energy(record: CrystalRecord, energy: float, potential: str) -> CrystalRecord:
    provenance = {**record.provenance, "potential": potential}
    return replace(record, properties={"energy_per_atom": energy}, provenance=provenance)


def cif_references(folder: Path, spec: PotentialSpec, per_formula: int) -> list[CrystalRecord]:
    """Elements and measured compounds of a CIF folder, relaxed with ``spec`` (see above)."""
    records, _ = load_cif_dir(folder)
    elements = sorted({s for r in records for s in r.species})
    measured = measured_formation_enthalpies(elements)
    keep = [
        r
        for r in records
        if len(set(r.species)) == 1 or r.to_structure().composition.reduced_formula in measured
    ]
    energies = single_point_records(keep, spec, progress=False)
    chosen = lowest_distinct_per_formula(keep, energies, per_formula)
    # The gases' molecule and any element the folder lacks, as the pipeline's hull has them.
    present = {r.species[0] for r in chosen if len(set(r.species)) == 1 and r.species[0] != "O"}
    chosen = [r for r in chosen if set(r.species) != {"O"}]
    chosen += [elemental_reference(el).to_record() for el in elements if el not in present]
    hull_relax = default("screen.hull_relax")
    settings = RelaxSettings(fmax=hull_relax.fmax, max_steps=hull_relax.max_steps)
    results = relax_records(chosen, spec, settings, progress=False)
    return [res.to_record(rec, describe(spec)) for rec, res in zip(chosen, results) if res.ok]


def run_e_hull(
    results: Path, references: dict[str, list[CrystalRecord]]
) -> dict[str, dict[str, float]]:
    """Potential -> candidate id -> E_hull on its own hull, for a run's relaxed candidates."""
    relaxed_files = sorted((results / "results" / "screen" / "relax").glob("*/relaxed.json.gz"))
    if not relaxed_files:
        raise PipelineInputError(f"{results}: no results/screen/relax/<potential>/relaxed.json.gz")
    relaxed = read_records(relaxed_files[0])
    main_potential = potential_name(relaxed[0]) if relaxed else relaxed_files[0].parent.name
    e_hull = {}
    oxygen_reference = default("screen.oxygen_reference")
    for potential, hull in references.items():
        own = results / "results" / "hull" / potential / "references_relaxed.json.gz"
        hull = read_records(own) if own.is_file() else hull
        if potential == main_potential:
            records = relaxed
        else:
            second = results / "results" / "screen" / "second_opinion" / f"{potential}.json.gz"
            if second.is_file():
                records = read_records(second)
            else:
                spec = PotentialSpec(potential)
                energies = single_point_records(relaxed, spec, progress=False)
                records = [with_energy(r, e, describe(spec)) for r, e in zip(relaxed, energies)]
        e_hull[potential] = e_above_own_hull(records, hull, oxygen_reference)
    return e_hull


@exit_on_input_error
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--potentials", nargs="+", choices=POTENTIALS, default=list(POTENTIALS))
    parser.add_argument("--references-dir", type=Path, default=REFERENCES_DIR)
    parser.add_argument("--cif-dir", type=Path, default=None)
    parser.add_argument(
        "--per-formula", type=int, default=2, help="CIF structures relaxed per formula"
    )
    parser.add_argument("--results", type=Path, default=None, help="a run folder")
    args = parser.parse_args()
    references = {}
    for potential in args.potentials:
        if args.cif_dir is not None:
            spec = PotentialSpec(potential)
            references[potential] = cif_references(args.cif_dir, spec, args.per_formula)
        else:
            references[potential] = shipped_references(args.references_dir, potential)
    agreement = {}
    if args.results is not None:
        agreement = pairwise_agreement(run_e_hull(args.results, references), Criteria.default())
    setting = default("screen.oxygen_reference")
    for potential, hull in references.items():
        checked = check_hull(hull, setting)
        with_molecule = check_hull(hull, "molecule")
        line = {
            "potential": hull[0].provenance.get("potential", potential),
            "hull": str(args.cif_dir or args.references_dir),
            "oxygen_reference_setting": setting,
            **checked.summary(),
            "approximate_references": [r.id for r in hull if r.provenance.get("approximate")],
            "with_o2_molecule": {
                k: v
                for k, v in with_molecule.summary().items()
                if k != "phases" and k != "stable_phases_missing"
            },
        }
        if agreement:
            line["agreement"] = {k: v for k, v in agreement.items() if potential in k.split("-")}
        print(json.dumps(line))


if __name__ == "__main__":
    main()
