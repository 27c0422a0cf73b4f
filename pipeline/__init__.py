"""crystal-htvs: generative inverse design of inorganic crystals, one Snakemake DAG.

The package does the work; the Snakemake rules in ``rules/`` only call the stage
CLIs (``python -m pipeline.stages.<stage>``). Every module is importable without Snakemake.
"""

__version__ = "0.1.0"
