"""atomate2 flows of the exported candidates: built offline, round-tripped through JSON, and
running the input sets written beside them.

Needs the ``flows`` extra (atomate2, jobflow); skipped without it, except where
HTVS_REQUIRE_FLOWS=1 or CI=true makes a missing atomate2 a failure.
"""

from __future__ import annotations

import json
import os

import pytest
from pymatgen.io.vasp import Incar, Kpoints

from pipeline.candidates.vasp import RELAX_DIR, mp_static_set, write_dft_inputs
from pipeline.dft.flows import (
    FLOW_FILE,
    atomate2_available,
    flow_from_json,
    flow_to_json,
    job_inputs,
    read_flow,
    vasp_jobs,
    write_flows,
)
from pipeline.stages.dft_check import main as dft_main

if not atomate2_available():
    if os.environ.get("HTVS_REQUIRE_FLOWS") == "1" or os.environ.get("CI") == "true":
        pytest.fail("atomate2 is not installed: pip install -e '.[flows]'", pytrace=False)
    pytest.skip("atomate2 not installed (the flows extra)", allow_module_level=True)


@pytest.fixture(scope="module")
def spinel(reference_records):
    return next(r for r in reference_records if r.id == "MgMn2O4").to_structure()


@pytest.fixture(scope="module")
def exported(spinel, tmp_path_factory):
    return write_dft_inputs(spinel, tmp_path_factory.mktemp("dft_ready") / "c1", "c1")


def test_export_writes_a_flow_of_two_relaxations_and_a_static(exported):
    flow = read_flow(exported)
    names = [job.name for job in vasp_jobs(flow)]
    assert names == ["MP GGA relax 1", "MP GGA relax 2", "MP GGA static"]
    assert flow.name.startswith("c1 ")
    assert "flow.json" in (exported / "README.txt").read_text()


def test_flow_round_trips_through_json(exported, spinel):
    text = (exported / FLOW_FILE).read_text()
    flow = flow_from_json(text)
    assert json.loads(flow_to_json(flow)) == json.loads(text)
    relax1, relax2, static = vasp_jobs(flow)
    assert relax1.function_args[0] == spinel  # the ML-relaxed structure, as exported
    # the second relaxation and the static run start from their predecessor's output
    assert relax2.function_args[0].uuid == relax1.uuid
    assert static.function_kwargs["structure"].uuid == relax2.uuid


def test_flow_runs_the_exported_incar_and_kpoints(exported, spinel):
    incar = Incar.from_file(exported / RELAX_DIR / "INCAR")
    kpoints = Kpoints.from_file(exported / RELAX_DIR / "KPOINTS")
    relax1, relax2, static = vasp_jobs(read_flow(exported))
    for job in (relax1, relax2):
        inputs = job_inputs(job, spinel)
        assert dict(inputs["INCAR"]) == dict(incar)
        assert inputs["KPOINTS"].as_dict() == kpoints.as_dict()
        assert inputs["POTCAR.spec"].split() == (
            (exported / RELAX_DIR / "POTCAR.spec").read_text().split()
        )
    static_inputs = job_inputs(static, spinel)
    assert dict(static_inputs["INCAR"]) == dict(mp_static_set(spinel).incar)
    assert static_inputs["INCAR"]["NSW"] == 0 and static_inputs["INCAR"]["ENCUT"] == 520


def test_flows_subcommand_writes_a_flow_where_the_export_had_none(spinel, tmp_path):
    folder = write_dft_inputs(spinel, tmp_path / "dft_ready" / "c2", "c2", flow=False)
    assert not (folder / FLOW_FILE).exists()
    assert dft_main(["flows", str(tmp_path / "dft_ready")]) == 0
    assert [job.name for job in vasp_jobs(read_flow(folder))][0] == "MP GGA relax 1"
    assert write_flows(folder) == [folder / FLOW_FILE]
