"""From the short list to DFT.

* :mod:`pipeline.dft.flows`: atomate2 flows (MP-compatible double relaxation + static) for the
  exported candidates, to run VASP on a cluster with jobflow or jobflow-remote;
* :mod:`pipeline.dft.mp_inputs`: the Materials Project's U values, initial moments and k-point
  mesh of a structure (pymatgen's ``MPRelaxSet``), shared by the flows and the GPAW check;
* :mod:`pipeline.dft.gpaw_calc`, :mod:`pipeline.dft.cache`, :mod:`pipeline.dft.corrections`,
  :mod:`pipeline.dft.references`, :mod:`pipeline.dft.check`: the offline spot-check of the ML
  verdict with GPAW PBE(+U) single points, cached, MP2020-corrected, on a hull of the same level.

GPAW (GPL-3) and atomate2 are optional (``pip install -e ".[dft]"``, docs/dft.md); the modules
that need them import them only when called.
"""
