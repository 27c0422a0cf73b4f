"""CLI of the Pourbaix stage: ``python -m pipeline.stages.pourbaix --help``.

Delta G_pbx of every relaxed candidate: its free energy above the Pourbaix hull, minimised over
a pH scan at a fixed potential vs RHE (the scheme is described in ``pipeline.screen.pourbaix_scheme``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Composition
from tqdm import tqdm

from pipeline.errors import PipelineInputError, exit_on_input_error
from pipeline.records import read_records
from pipeline.screen.pourbaix_scheme import (
    PourbaixScreen,
    ase_aqueous_species,
    fetch_mp_aqueous_species,
    fit_chemical_potentials,
    lowest_energy_per_formula,
    pourbaix_obstacle,
    read_experimental_free_energies,
    read_unverified_formulas,
    unverified_dependence,
)
from pipeline.settings import setting_argument

ION_SOURCES = ("ase", "mp")
COLUMNS = [
    "id",
    "formula",
    "formation_free_energy_per_atom",
    "delta_g_pbx",
    "ph_at_min",
    "pourbaix_note",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.stages.pourbaix",
        description="Pourbaix stability (Delta G_pbx, eV/atom) of relaxed candidates.",
    )
    parser.add_argument(
        "--relaxed",
        type=Path,
        required=True,
        help="relaxed candidates with properties.energy_per_atom (.json.gz)",
    )
    parser.add_argument(
        "--references",
        type=Path,
        required=True,
        help="relaxed hull references with properties.energy_per_atom (.json.gz)",
    )
    parser.add_argument(
        "--experimental",
        type=Path,
        required=True,
        help="experimental free energies of formation of oxides with their sources (CSV,"
        " resources/thermo/oxide_formation_free_energies.csv)",
    )
    setting_argument(
        parser,
        "--ion-source",
        "screen.pourbaix.ion_source",
        choices=ION_SOURCES,
        help="aqueous ion free energies: ase (bundled table, offline) or mp"
        " (Materials Project ion reference data; needs MP_API_KEY and network)",
    )
    setting_argument(parser, "--v-rhe", "screen.pourbaix.potential_v", type=float, help="V vs RHE")
    setting_argument(
        parser,
        "--ph-range",
        "screen.pourbaix.ph_range",
        type=float,
        nargs=2,
        metavar=("MIN", "MAX"),
        help="pH scan range",
    )
    setting_argument(parser, "--ph-step", "screen.pourbaix.ph_step", type=float)
    setting_argument(
        parser,
        "--ion-concentration",
        "screen.pourbaix.ion_concentration",
        type=float,
        help="concentration of each aqueous ion, mol/L",
    )
    parser.add_argument("--out", type=Path, required=True, help="Pourbaix table (.csv)")
    parser.add_argument(
        "--out-scheme",
        type=Path,
        required=True,
        help="fitted chemical potentials, residuals and ions used (.json)",
    )
    return parser


@exit_on_input_error
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    ph_min, ph_max = args.ph_range
    if not (0.0 <= ph_min <= ph_max and args.ph_step > 0):
        raise PipelineInputError(f"bad pH scan: range {args.ph_range}, step {args.ph_step}")
    if args.ion_concentration <= 0:
        raise PipelineInputError("--ion-concentration must be positive")
    candidates = read_records(args.relaxed)
    references = read_records(args.references)
    experimental = read_experimental_free_energies(args.experimental)
    fit = fit_chemical_potentials(references, experimental)
    unverified = unverified_dependence(fit, read_unverified_formulas(args.experimental))
    caveat = (
        f"computed with unverified free energies of {', '.join(unverified)}" if unverified else ""
    )
    elements = sorted(fit.mu)
    ions = (
        ase_aqueous_species(elements)
        if args.ion_source == "ase"
        else fetch_mp_aqueous_species(elements)
    )
    solids = [
        (c, fit.formation_energy(c, e)) for c, e in lowest_energy_per_formula(references).values()
    ]
    ph_grid = np.arange(ph_min, ph_max + 0.5 * args.ph_step, args.ph_step)
    screen = PourbaixScreen(
        solids, ions, v_rhe=args.v_rhe, ph_grid=ph_grid, concentration=args.ion_concentration
    )
    rows = []
    for record in tqdm(candidates, desc="pourbaix", unit="structure"):
        composition = Composition(record.formula)
        energy = record.properties.get("energy_per_atom", math.nan)
        row = dict.fromkeys(COLUMNS, math.nan)
        row.update(id=record.id, formula=composition.reduced_formula, pourbaix_note="")
        obstacle = pourbaix_obstacle(composition, fit, ions, experimental)
        if obstacle is None and not math.isfinite(energy):
            obstacle = "no energy"
        if obstacle is None:
            formation = fit.formation_energy(composition, energy)
            result = screen.evaluate(composition, formation)
            row.update(
                formation_free_energy_per_atom=formation / composition.num_atoms,
                delta_g_pbx=result.delta_g_pbx,
                ph_at_min=result.ph_at_min,
                pourbaix_note=caveat,
            )
        else:
            row["pourbaix_note"] = f"not computed: {obstacle}"
        rows.append(row)
    notes = sorted({r["pourbaix_note"] for r in rows if r["pourbaix_note"]})
    for note in notes:
        print(f"{sum(r['pourbaix_note'] == note for r in rows)} candidates {note}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=COLUMNS).to_csv(args.out, index=False, float_format="%.6g")
    scheme = {
        "v_rhe": args.v_rhe,
        "ph_range": [ph_min, ph_max],
        "ph_step": args.ph_step,
        "ion_concentration": args.ion_concentration,
        "ion_source": args.ion_source,
        "chemical_potentials": {k: float(v) for k, v in fit.mu.items()},
        "potential_elemental_energies": {k: float(v) for k, v in fit.elemental.items()},
        "fit_residuals_ev_per_atom": fit.residuals,
        "fitted_oxides_unverified": unverified,
        "elements_on_experimental_scale": sorted(fit.fitted_elements),
        "ions": [asdict(s) for s in ions],
    }
    args.out_scheme.parent.mkdir(parents=True, exist_ok=True)
    args.out_scheme.write_text(json.dumps(scheme, indent=1))
    rms = math.sqrt(np.mean(np.square(list(fit.residuals.values())))) if fit.residuals else 0.0
    print(
        f"{len(rows)} candidates; chemical potentials fitted to {len(fit.residuals)} oxides"
        f" (rms residual {rms:.3f} eV/atom); {len(ions)} aqueous species from {args.ion_source}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
