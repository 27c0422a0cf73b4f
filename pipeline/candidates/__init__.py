"""Candidates after screening: the ranked table (:mod:`.ranking`) and DFT-ready VASP inputs
(:mod:`.vasp`). The stage CLI is ``python -m pipeline.stages.export``."""
