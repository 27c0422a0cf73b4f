"""CrysTens: the 64x64x4 crystal tensor of Alverson et al., Digital Discovery 3, 62 (2024).

Layout
------
Arrays are channels-first, ``(4, 64, 64)`` (the paper's 64x64x4 with the channel axis
moved to the front, as torch convolutions want it). Indices are 0-based.

* Rows/columns 0-10, the **header**: one attribute per index,
  ``HEADER = (Z, x, y, z, a, b, c, alpha, beta, gamma, sg)``: atomic number, the site's
  fractional coordinates, the lattice lengths (Å) and angles (°), and the space-group
  number of the whole crystal.
* Row/column 11: **padding**, always zero.
* Rows/columns 12-63: up to :data:`MAX_SITES` = 52 **sites**, in the record's order; unused
  sites are zero.

For site ``s`` at index ``i = 12 + s`` and header attribute ``h``, every channel ``k``
holds the attribute on both axes: ``T[k, h, i] = T[k, i, h] = value_h(s)``, so each header
value appears 8 times (4 channels x 2 mirrors). The site-site block holds

* channel 0: ``T[0, i, j] = |f_i - f_j|``, the Euclidean norm of the difference of the
  fractional coordinates (the paper's pairwise "distance matrix", in fractional units and
  without periodic images, as in the authors' code);
* channels 1-3: ``T[1 + d, i, j] = f_i[d] - f_j[d]``, the relative x, y, z differences
  (antisymmetric).

The header-header block (0-11 x 0-11) is zero. Fractional coordinates are wrapped into
[0, 1) before encoding.

Normalisation
-------------
:func:`normalize` divides each quantity by a fixed constant (no data-set statistics, so
it is exactly invertible by :func:`denormalize` with nothing to store): atomic number by
:data:`Z_SCALE`, lengths by :data:`LENGTH_SCALE` (Å), angles by :data:`ANGLE_SCALE` (°),
the space group by :data:`SG_SCALE`, the distance channel by ``sqrt(3)`` (the largest
distance of two points of the unit cube); coordinates and their differences stay as they
are. Every normalised value of a crystal then lies in [-1, 1] (differences) or [0, 1]
(everything else), which is the range the generators output (tanh or a clipped DDPM).

Reconstruction
--------------
:func:`reconstruct` follows the paper: (1) average the 8 repeated copies of each header
value per site; (2) a site holds an atom when its averaged atomic number is at least half
the smallest atomic number of the chemical system (padding is 0); (3) the lattice and the
space group are the averages of the per-atom values; (4) each atom's coordinates are the
mean of its own coordinates and the guesses ``f_j + (f_i - f_j)`` from the relative
channels of every other atom (antisymmetrised first); (5) k-means on the atomic numbers
(k = number of distinct rounded values, at most the number of elements), each centre snapped
to the nearest element of the system; (6) k-means on the pooled x, y, z values, started from
the runs of sorted values closer than ``coord_merge_tol`` to each other, which snaps nearly
equal coordinates to a common value as the paper does (its code uses k = number of values,
i.e. no merging, by default).

Quality metrics (the paper's Tables 1 and 2) come with every reconstruction,
in physical units: the variances of the repeated lattice lengths (Å^2), angles (°^2) and
space group, pooled as in the paper over every copy of every atom (8 n values, one
variance per parameter, averaged over a, b, c and over alpha, beta, gamma); the variance of
the repeated coordinates (fractional^2), which differ from atom to atom and so are taken
over each atom's 8 copies and averaged; the mean absolute disagreement between an atom's
own coordinates and those from the relative channels; and, as the paper's Table 2, the
*sum* over atom pairs (both entries i, j and j, i of the channel) of the mismatch between
the distance channel and the distances of the reconstructed coordinates, with its mean
per entry beside it (``distance_mismatch_per_pair``; not the paper's).

:func:`crystens_dataset` encodes and normalises a whole dataset for training.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from pymatgen.core import Element, Lattice
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
from sklearn.cluster import KMeans
from tqdm import tqdm

from pipeline.chemsys import ChemicalSystem
from pipeline.errors import PipelineInputError
from pipeline.formats import CrysTensDataset
from pipeline.records import CrystalRecord
from pipeline.represent import DecodeError, lattice_from_parameters

SIZE = 64
CHANNELS = 4
HEADER = ("Z", "x", "y", "z", "a", "b", "c", "alpha", "beta", "gamma", "sg")
N_HEADER = len(HEADER)
FIRST_SITE = N_HEADER + 1  # index 11 is the padding row/column
MAX_SITES = SIZE - FIRST_SITE
SHAPE = (CHANNELS, SIZE, SIZE)

Z_SCALE = 100.0
LENGTH_SCALE = 30.0
ANGLE_SCALE = 180.0
SG_SCALE = 230.0
DISTANCE_SCALE = float(np.sqrt(3.0))
HEADER_SCALES = np.array(
    [
        Z_SCALE,
        1.0,
        1.0,
        1.0,
        LENGTH_SCALE,
        LENGTH_SCALE,
        LENGTH_SCALE,
        ANGLE_SCALE,
        ANGLE_SCALE,
        ANGLE_SCALE,
        SG_SCALE,
    ]
)
_COORDS = slice(1, 4)
_LENGTHS = slice(4, 7)
_ANGLES = slice(7, 10)
_SG = 10


def _scale_tensor() -> np.ndarray:
    """Per-entry divisor of :func:`normalize` (1 where a value is kept as is)."""
    scale = np.ones(SHAPE)
    for h, s in enumerate(HEADER_SCALES):
        scale[:, h, FIRST_SITE:] = s
        scale[:, FIRST_SITE:, h] = s
    scale[0, FIRST_SITE:, FIRST_SITE:] = DISTANCE_SCALE
    return scale


_SCALE = _scale_tensor()


def normalize(tensor: np.ndarray) -> np.ndarray:
    """Physical CrysTens (``(..., 4, 64, 64)``) to the model's range; see the module doc."""
    return np.asarray(tensor, dtype=float) / _SCALE


def denormalize(tensor: np.ndarray) -> np.ndarray:
    """Inverse of :func:`normalize`."""
    return np.asarray(tensor, dtype=float) * _SCALE


def space_group_number(record: CrystalRecord, symprec: float = 0.01) -> int:
    """International space-group number (spglib via pymatgen); 1 if spglib finds none."""
    try:
        return int(
            SpacegroupAnalyzer(record.to_structure(), symprec=symprec).get_space_group_number()
        )
    except (TypeError, ValueError):
        return 1


def encode(record: CrystalRecord, space_group: int | None = None) -> np.ndarray:
    """The physical (not normalised) CrysTens of ``record``, float64 ``(4, 64, 64)``.

    ``space_group`` is computed with :func:`space_group_number` when not given.
    """
    n = record.natoms
    if n > MAX_SITES:
        raise PipelineInputError(f"{record.id}: {n} atoms exceed the {MAX_SITES} CrysTens sites")
    lattice = Lattice(record.lattice)
    frac = np.mod(np.asarray(record.frac_coords, dtype=float), 1.0)
    frac[frac >= 1.0] = 0.0  # -1e-17 % 1.0 == 1.0 in floating point
    sg = space_group_number(record) if space_group is None else int(space_group)
    header = np.empty((n, N_HEADER))
    header[:, 0] = [Element(s).Z for s in record.species]
    header[:, _COORDS] = frac
    header[:, _LENGTHS] = lattice.abc
    header[:, _ANGLES] = lattice.angles
    header[:, _SG] = sg
    sites = slice(FIRST_SITE, FIRST_SITE + n)
    tensor = np.zeros(SHAPE)
    tensor[:, :N_HEADER, sites] = header.T
    tensor[:, sites, :N_HEADER] = header
    diff = frac[:, None, :] - frac[None, :, :]
    tensor[0, sites, sites] = np.linalg.norm(diff, axis=-1)
    tensor[1:, sites, sites] = np.moveaxis(diff, -1, 0)
    return tensor


@dataclass(frozen=True)
class QualityMetrics:
    """The paper's per-tensor consistency figures (Tables 1 and 2), physical units.

    Lattice and space-group variances pool the 8 copies of every atom (the paper's Table
    1); coordinate and atomic-number variances are over each atom's 8 copies, averaged over
    the atoms (the values differ from atom to atom). Groups (a, b, c; alpha, beta, gamma;
    x, y, z) are averaged over their attributes. ``distance_mismatch`` is the paper's Table
    2 sum over atom pairs; ``distance_mismatch_per_pair`` its mean per pair entry.
    """

    n_atoms: int
    var_lattice_lengths: float
    var_lattice_angles: float
    var_space_group: float
    var_coordinates: float
    var_atomic_number: float
    coordinate_disagreement: float
    distance_mismatch: float
    distance_mismatch_per_pair: float

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Reconstruction:
    """A decoded crystal, its space-group value and the tensor's quality metrics."""

    record: CrystalRecord
    space_group: int
    quality: QualityMetrics


def _pooled_variance(copies: np.ndarray) -> float:
    """``(n atoms, attributes, 8 copies)`` -> the variance of each attribute over all its
    ``8 n`` copies, averaged over the attributes."""
    return float(np.swapaxes(copies, 0, 1).reshape(copies.shape[1], -1).var(axis=-1).mean())


def atom_sites(physical: np.ndarray, elements: Sequence[str]) -> np.ndarray:
    """Indices (0-based site numbers) of the sites that hold an atom; see the module doc."""
    z_mean = _header_copies(physical)[:, 0].mean(axis=-1)
    threshold = 0.5 * min(Element(el).Z for el in elements)
    return np.flatnonzero(z_mean >= threshold)


def _header_copies(physical: np.ndarray) -> np.ndarray:
    """``(52, 11, 8)``: the 8 copies (4 channels x 2 mirrors) of each site's header values."""
    rows = physical[:, FIRST_SITE:, :N_HEADER]  # (4, sites, header)
    cols = np.swapaxes(physical[:, :N_HEADER, FIRST_SITE:], 1, 2)
    return np.moveaxis(np.concatenate([rows, cols], axis=0), 0, -1)


def reconstruct(
    tensor: np.ndarray,
    elements: Sequence[str],
    id: str = "decoded",
    coord_merge_tol: float = 1e-3,
    normalized: bool = True,
    seed: int = 0,
) -> Reconstruction:
    """Decode a CrysTens into a crystal of ``elements``, with its quality metrics.

    Parameters
    ----------
    tensor
        ``(4, 64, 64)``; normalised (model output) unless ``normalized`` is False.
    elements
        The chemical system; every atom becomes the element nearest in atomic number to
        its k-means cluster.
    coord_merge_tol
        Coordinate values (fractional) closer than this are merged by the k-means step.
    seed
        Seed of the k-means initialisation.

    Raises
    ------
    DecodeError
        Non-finite values, no atom, or a lattice that is not a cell.
    """
    tensor = np.asarray(tensor, dtype=float)
    if tensor.shape != SHAPE:
        raise DecodeError(f"expected shape {SHAPE}, got {tensor.shape}")
    if not np.all(np.isfinite(tensor)):
        raise DecodeError("non-finite values")
    physical = denormalize(tensor) if normalized else tensor
    sites = atom_sites(physical, elements)
    if len(sites) == 0:
        raise DecodeError("no atoms")
    copies = _header_copies(physical)[sites]  # (n, 11, 8)
    header = copies.mean(axis=-1)
    lengths = header[:, _LENGTHS].mean(axis=0)
    angles = header[:, _ANGLES].mean(axis=0)
    space_group = int(np.clip(np.rint(header[:, _SG].mean()), 1, 230))
    lattice = lattice_from_parameters(lengths, angles)

    index = FIRST_SITE + sites
    own = header[:, _COORDS]
    rel = physical[1:][:, index][:, :, index]  # (3, n, n): f_i - f_j
    rel = np.moveaxis(0.5 * (rel - np.swapaxes(rel, 1, 2)), 0, -1)
    guesses = own[None, :, :] + rel  # [i, j] = f_j + (f_i - f_j); [i, i] = f_i
    combined = guesses.mean(axis=1)

    n = len(sites)
    from_others = (guesses.sum(axis=1) - own) / (n - 1) if n > 1 else own
    distances = physical[0][np.ix_(index, index)]
    implied = np.linalg.norm(combined[:, None, :] - combined[None, :, :], axis=-1)
    pair_mask = ~np.eye(n, dtype=bool)
    mismatch = np.abs(distances - implied)[pair_mask]
    quality = QualityMetrics(
        n_atoms=n,
        var_lattice_lengths=_pooled_variance(copies[:, _LENGTHS]),
        var_lattice_angles=_pooled_variance(copies[:, _ANGLES]),
        var_space_group=_pooled_variance(copies[:, _SG][:, None, :]),
        var_coordinates=float(copies[:, _COORDS].var(axis=-1).mean()),
        var_atomic_number=float(copies[:, 0].var(axis=-1).mean()),
        coordinate_disagreement=float(np.abs(own - from_others).mean()),
        distance_mismatch=float(mismatch.sum()),
        distance_mismatch_per_pair=float(mismatch.mean()) if n > 1 else 0.0,
    )
    species = _cluster_species(header[:, 0], elements, seed)
    frac = _cluster_coordinates(np.mod(combined, 1.0), coord_merge_tol, seed)
    record = CrystalRecord(
        id=id, lattice=lattice.matrix.tolist(), species=species, frac_coords=frac.tolist()
    )
    return Reconstruction(record=record, space_group=space_group, quality=quality)


def decode(tensor: np.ndarray, elements: Sequence[str], id: str = "decoded") -> CrystalRecord:
    """The crystal of a normalised CrysTens (see :func:`reconstruct`)."""
    return reconstruct(tensor, elements, id=id).record


def _cluster_species(z_values: np.ndarray, elements: Sequence[str], seed: int) -> list[str]:
    """k-means on atomic numbers, each centre snapped to the nearest element of the system.

    k is the number of distinct rounded atomic numbers, at most the number of elements;
    when no larger than that, the groups of equal rounded values are the initial clusters.
    """
    rounded = np.rint(z_values)
    distinct = np.unique(rounded)
    if len(distinct) <= len(elements):
        init = np.array([z_values[rounded == v].mean() for v in distinct])
        centres, labels = _kmeans_1d(z_values, init, seed)
    else:
        centres, labels = _kmeans_1d(z_values, len(elements), seed)
    system_z = np.array([Element(el).Z for el in elements])
    nearest = [elements[int(np.argmin(np.abs(system_z - c)))] for c in centres]
    return [nearest[label] for label in labels]


def _cluster_coordinates(frac: np.ndarray, tol: float, seed: int) -> np.ndarray:
    """Snap nearly equal coordinate values (pooled over x, y, z) to common k-means centres.

    The initial clusters are the runs of sorted values whose neighbours lie within ``tol``.
    """
    values = frac.ravel()
    ordered = np.sort(values)
    runs = np.split(ordered, np.flatnonzero(np.diff(ordered) > tol) + 1)
    centres, labels = _kmeans_1d(values, np.array([run.mean() for run in runs]), seed)
    snapped = np.mod(centres[labels], 1.0)
    snapped[snapped >= 1.0] = 0.0
    return snapped.reshape(frac.shape)


def _kmeans_1d(
    values: np.ndarray, init: int | np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """k-means of scalars: ``init`` is k (k-means++ starts) or the initial centres."""
    k = init if isinstance(init, int) else len(init)
    if k >= len(values):
        return values.copy(), np.arange(len(values))
    start = "k-means++" if isinstance(init, int) else np.asarray(init, float).reshape(-1, 1)
    with warnings.catch_warnings():
        # Duplicate values can leave fewer distinct centres than k; that is fine here.
        warnings.simplefilter("ignore")
        model = KMeans(
            n_clusters=k, init=start, n_init=4 if isinstance(init, int) else 1, random_state=seed
        ).fit(values.reshape(-1, 1))
    return model.cluster_centers_[:, 0], model.labels_


def crystens_dataset(
    records: Sequence[CrystalRecord], system: ChemicalSystem, progress: bool = False
) -> CrysTensDataset:
    """Encode and normalise every record (space groups from spglib)."""
    if not records:
        raise PipelineInputError("nothing to encode: the dataset is empty")
    x = np.zeros((len(records), *SHAPE), dtype=np.float32)
    space_group = np.zeros(len(records), dtype=np.int64)
    for i, record in enumerate(tqdm(records, desc="CrysTens", disable=not progress)):
        foreign = system.foreign_elements(record.species)
        if foreign:
            raise PipelineInputError(f"{record.id}: elements {foreign} are not in {system}")
        space_group[i] = space_group_number(record)
        x[i] = normalize(encode(record, space_group=space_group[i]))
    counts = np.array(
        [[Counter(r.species).get(el, 0) for el in system.elements] for r in records], dtype=np.int64
    )
    return CrysTensDataset(
        elements=tuple(system.elements),
        x=x,
        space_group=space_group,
        counts=counts,
        ids=[r.id for r in records],
        parents=[r.parent or r.id for r in records],
    )
