# Opt-in (dft.check: true): the DFT spot-check of the ML verdict. GPAW PBE(+U) single points of
# the top exported candidates at their ML geometry and of the phases their E_hull needs, MP2020-
# corrected, cached per structure and setting (results/dft_check/cache/, and the shipped
# resources/dft/). Needs the [dft] extra (docs/dft.md).


rule dft_check:
    input:
        candidates=rules.export.output.candidates,
        criteria=rules.export.output.criteria,
        relaxed=relaxed(),
        hull_phases=hull_references(),
    output:
        table="results/dft_check/dft_check.csv",
    log:
        "logs/dft_check.log",
    conda:
        "../envs/dft.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=240,
    params:
        options=json.dumps(dataclasses.asdict(SETTINGS.dft), sort_keys=True),
        top_n=SETTINGS.dft.top_n,
        shipped=dft_shipped_arg(),
        cache="results/dft_check/cache",
        gpaw_logs="results/dft_check/gpaw",
    shell:
        "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1"
        " python -m pipeline.stages.dft_check check --candidates {input.candidates}"
        " --relaxed {input.relaxed} --hull-phases {input.hull_phases}"
        " --options {params.options:q} --top-n {params.top_n} --cache {params.cache}"
        " {params.shipped} --log-dir {params.gpaw_logs}"
        " --criteria {input.criteria}"
        " --out {output.table} > {log} 2>&1"
