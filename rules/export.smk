# The ranked candidates table and the DFT-ready inputs of the candidates that pass.


rule export:
    input:
        relaxed=relaxed(),
        hull=rules.hull.output.table,
        properties=rules.properties.output.table,
        pourbaix=rules.pourbaix.output.table,
        validation=rules.validate.output.table,
        known=rules.fetch_data.output.known,
        hull_phases=hull_references(),
    output:
        candidates="results/candidates.csv",
        dft_ready=directory("results/dft_ready"),
    params:
        max_e_hull=config["screen"]["e_hull"]["synthesizable"],
        max_delta_g=config["screen"]["pourbaix"]["max_delta_g"],
        potential=config["screen"]["potential"],
        seed=config["seed"],
    log:
        "logs/export.log",
    conda:
        "../envs/screen.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    shell:
        "python -m pipeline.stages.export --relaxed {input.relaxed} --hull {input.hull}"
        " --known {input.known} {input.hull_phases}"
        " --properties {input.properties} --pourbaix {input.pourbaix}"
        " --validation {input.validation} --max-e-hull {params.max_e_hull}"
        " --max-delta-g-pbx {params.max_delta_g} --potential {params.potential}"
        " --seed {params.seed} --out-candidates {output.candidates}"
        " --out-dir {output.dft_ready} > {log} 2>&1"
