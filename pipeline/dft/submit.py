"""Run or submit the candidates' atomate2 flows (``dft_ready/<id>/flow.json``).

``local``: jobflow's local manager runs each flow here (VASP and atomate2's ``VASP_CMD`` needed
on this machine); ``remote``: jobflow-remote's ``submit_flow`` hands it to a configured worker
(a cluster, ``jf project`` / ``jf worker``), where its queue runs it. Both are optional
(``pip install -e ".[dft]"``) and imported only here.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline.dft.flows import read_flow
from pipeline.errors import PipelineInputError

MANAGERS = ("local", "remote")


def submit_flows(
    folders: Sequence[Path],
    manager: str,
    worker: str | None = None,
    project: str | None = None,
) -> list[Any]:
    """Run (``local``) or submit (``remote``) the flow of each folder.

    ``local``: jobflow's ``run_locally`` in ``<folder>/runs/`` (VASP and atomate2's
    ``VASP_CMD`` on this machine). ``remote``: jobflow-remote's ``submit_flow`` to ``worker``
    of ``project`` (both from the user's jobflow-remote configuration, ``jf project``); the
    returned job ids are tracked with ``jf job list``.
    """
    if manager not in MANAGERS:
        raise PipelineInputError(f"unknown manager {manager!r}; choose one of {MANAGERS}")
    flows = [read_flow(folder) for folder in folders]
    results: list[Any] = []
    if manager == "local":
        from jobflow.managers.local import run_locally

        for folder, flow in zip(folders, flows):
            runs = Path(folder) / "runs"
            runs.mkdir(exist_ok=True)
            results.append(run_locally(flow, create_folders=True, root_dir=runs))
        return results
    if importlib.util.find_spec("jobflow_remote") is None:
        raise PipelineInputError('jobflow-remote is not installed: pip install -e ".[dft]"')
    from jobflow_remote import submit_flow

    for flow in flows:
        results.append(submit_flow(flow, worker=worker, project=project))
    return results
