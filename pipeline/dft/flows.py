"""atomate2 flows of the exported candidates: what a cluster runs after the screen.

Each ``dft_ready/<id>/`` folder gets ``flow.json``: atomate2's Materials Project GGA(+U)
workflow (``MPGGADoubleRelaxStaticMaker``: two relaxations, then a static run) of the ML-relaxed
structure, with the input sets of the exported folder (:func:`pipeline.candidates.vasp.mp_relax_set`
and :func:`~pipeline.candidates.vasp.mp_static_set`), serialised with monty so that
``jobflow`` rebuilds it anywhere; :mod:`pipeline.dft.submit` runs or submits them.

atomate2 and jobflow are optional (``pip install -e ".[dft]"``): they are
imported only inside the functions that need them.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path
from typing import TYPE_CHECKING

from pymatgen.core import Structure

from pipeline.candidates.vasp import mp_relax_set, mp_static_set
from pipeline.errors import PipelineInputError

if TYPE_CHECKING:
    from jobflow import Flow, Job
    from pymatgen.io.vasp.inputs import VaspInput

FLOW_FILE = "flow.json"


def atomate2_available() -> bool:
    """Whether atomate2 (and with it jobflow) can be imported."""
    return importlib.util.find_spec("atomate2") is not None


def _require_atomate2() -> None:
    if not atomate2_available():
        raise PipelineInputError(
            'atomate2 is not installed: pip install -e ".[dft]" (see docs/dft.md)'
        )


def mp_flow(structure: Structure, name: str) -> Flow:
    """The MP GGA(+U) double relaxation + static flow of one structure, named ``name``.

    atomate2's own makers, each given the export's input set, so the flow runs exactly the
    settings written to ``dft_ready/<id>/relax/`` (its other defaults, e.g. copying
    WAVECAR/CHGCAR between the jobs, stay atomate2's).
    """
    _require_atomate2()
    from atomate2.vasp.flows.mp import MPGGADoubleRelaxMaker, MPGGADoubleRelaxStaticMaker
    from atomate2.vasp.jobs.mp import MPGGARelaxMaker, MPGGAStaticMaker

    double = MPGGADoubleRelaxMaker()
    double = dataclasses.replace(
        double,
        relax_maker1=dataclasses.replace(
            double.relax_maker1 or MPGGARelaxMaker(), input_set_generator=mp_relax_set()
        ),
        relax_maker2=dataclasses.replace(double.relax_maker2, input_set_generator=mp_relax_set()),
    )
    default = MPGGADoubleRelaxStaticMaker()
    static = default.static_maker or MPGGAStaticMaker()
    maker = dataclasses.replace(
        default,
        name=f"{name} MP GGA(+U) double relax + static",
        relax_maker=double,
        static_maker=dataclasses.replace(static, input_set_generator=mp_static_set()),
    )
    return maker.make(structure)


def flow_to_json(flow: Flow) -> str:
    """The flow as JSON (monty's encoding, which jobflow reads back)."""
    from monty.json import MontyEncoder

    return json.dumps(flow.as_dict(), cls=MontyEncoder, indent=1)


def flow_from_json(text: str) -> Flow:
    """A flow written by :func:`flow_to_json`."""
    _require_atomate2()
    from jobflow import Flow
    from monty.json import MontyDecoder

    flow = json.loads(text, cls=MontyDecoder)
    if not isinstance(flow, Flow):
        raise PipelineInputError(f"the JSON holds a {type(flow).__name__}, not a jobflow Flow")
    return flow


def write_flow(structure: Structure, folder: str | Path, record_id: str) -> Path:
    """Write ``folder/flow.json`` for ``structure``; returns its path."""
    path = Path(folder) / FLOW_FILE
    path.write_text(flow_to_json(mp_flow(structure, record_id)))
    return path


def read_flow(folder: str | Path) -> Flow:
    """The flow in ``folder/flow.json``."""
    path = Path(folder) / FLOW_FILE
    if not path.is_file():
        raise PipelineInputError(f"{path} does not exist (write it with the 'flows' subcommand)")
    return flow_from_json(path.read_text())


def vasp_jobs(flow: Flow) -> list[Job]:
    """The flow's VASP jobs in order (nested flows opened)."""
    from jobflow import Flow

    jobs: list[Job] = []
    for item in flow.jobs:
        jobs.extend(vasp_jobs(item) if isinstance(item, Flow) else [item])
    return jobs


def job_inputs(job: Job, structure: Structure) -> VaspInput:
    """The VASP input a job of the flow would write for ``structure`` (POTCAR as spec)."""
    return job.maker.input_set_generator.get_input_set(structure, potcar_spec=True)


def flow_folders(root: str | Path) -> list[Path]:
    """The candidate folders under a ``dft_ready`` folder (those with a POSCAR), sorted."""
    root = Path(root)
    if (root / "POSCAR").is_file():
        return [root]
    if not root.is_dir():
        raise PipelineInputError(f"{root} is not a folder")
    return sorted(p.parent for p in root.glob("*/POSCAR"))


def write_flows(root: str | Path) -> list[Path]:
    """Write ``flow.json`` in every candidate folder under ``root`` from its POSCAR."""
    _require_atomate2()
    written = []
    for folder in flow_folders(root):
        structure = Structure.from_file(folder / "POSCAR")
        written.append(write_flow(structure, folder, folder.name))
    return written
