"""Report stage: the screen's plots for ``snakemake --report``."""
