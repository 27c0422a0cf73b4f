"""Stage CLIs, each run as ``python -m pipeline.stages.<stage>``."""
