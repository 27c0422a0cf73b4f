# Helpers shared by the rules: paths, command-line fragments, environment.

import os
from pathlib import Path

WORKFLOW_DIR = Path(workflow.basedir)

# The stage CLIs (`python -m pipeline.<stage>`) must import the package from this
# checkout, also inside a --use-conda environment that did not install it.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(WORKFLOW_DIR), os.environ.get("PYTHONPATH", "")) if p
)


def workflow_path(path):
    """A config path, relative to the workflow directory unless absolute."""
    return str(path) if os.path.isabs(path) else str(WORKFLOW_DIR / path)


def max_atoms_arg():
    """--max-atoms EL=N ... from encoding.max_atoms, or nothing to derive caps from data."""
    caps = config["encoding"]["max_atoms"]
    if not caps:
        return ""
    return "--max-atoms " + " ".join(f"{el}={n}" for el, n in caps.items())


def sample_files():
    """The generated structures of every configured generator model."""
    return [f"results/samples/{m}/samples.json.gz" for m in config.get("train", {}).get("models", [])]


def final_outputs():
    """What `snakemake` with no target builds."""
    outputs = [
        "results/data/summary.csv",
        "results/data/composition_distribution.png",
        "results/encoded/pointcloud.npz",
    ]
    if sample_files():
        outputs += ["results/screen/hull.csv"]
    return outputs
