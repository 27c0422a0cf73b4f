"""Load the original TensorFlow M3GNet MP-2021.2.8 from the ``m3gnet`` 0.2.4 sdist.

For the scripts that need TensorFlow (run them in the separate environment of
``envs/m3gnet-tf.yaml``, never in the pipeline's): ``convert_m3gnet.py`` and
``m3gnet_tf_reference.py``.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tarfile
import tempfile
from pathlib import Path

SDIST_NAME = "m3gnet-0.2.4.tar.gz"
SDIST_SHA256 = "a7f82b06f48d8fb81f91fb88484177005066cdf708902bf749afaa7f8d117ce8"
DOWNLOAD_COMMAND = "pip download --no-deps --no-binary :all: m3gnet==0.2.4"
MODEL_DIR = "pretrained/MP-2021.2.8-EFS"


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def unpack_sdist(sdist: Path) -> Path:
    """Check the sdist's hash and unpack it; the folder holding ``m3gnet/`` and ``pretrained/``."""
    found = sha256(sdist)
    if found != SDIST_SHA256:
        raise SystemExit(f"error: {sdist} has sha256 {found}, expected {SDIST_SHA256}")
    target = Path(tempfile.mkdtemp(prefix="m3gnet-sdist-"))
    with tarfile.open(sdist) as archive:
        archive.extractall(target, filter="data")
    return target / SDIST_NAME.removesuffix(".tar.gz")


def load_tf_potential(sdist: Path):
    """(``m3gnet.models.Potential``, ``m3gnet.models.M3GNet``) of MP-2021.2.8-EFS, on one thread."""
    # The checkpoint is a Keras 2 object graph: tf-keras reads it, Keras 3 cannot.
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    import ase.constraints
    import ase.filters

    # m3gnet.models imports ExpCellFilter from its pre-3.27 home.
    if not hasattr(ase.constraints, "ExpCellFilter"):
        ase.constraints.ExpCellFilter = ase.filters.ExpCellFilter
    source = unpack_sdist(sdist)
    sys.path.insert(0, str(source))
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from m3gnet.models import M3GNet, Potential

    model = M3GNet.load(str(source / MODEL_DIR))
    return Potential(model=model), model, source


def tf_energy_forces_stresses(potential, structure) -> tuple[float, list, list]:
    """Energy (eV), forces (eV/Å) and stress (eV/Å^3, ASE's sign) of a pymatgen structure."""
    energy, forces, stress = potential.get_efs(structure)
    gpa_per_ev_a3 = 160.21766208  # the package reports stress in GPa
    return (
        float(energy.numpy().ravel()[0]),
        forces.numpy().tolist(),
        (stress.numpy()[0] / gpa_per_ev_a3).tolist(),
    )
