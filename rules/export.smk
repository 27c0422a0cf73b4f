# The screen's verdict (pipeline/screen/criteria.py) on every relaxed candidate: the ranked
# candidates table, the criteria applied, and the DFT-ready inputs of those that pass.


rule export:
    input:
        relaxed=relaxed(),
        hull=rules.ehull.output.table,
        properties=rules.properties.output.table,
        pourbaix=rules.pourbaix.output.table,
        known_index=rules.known_index.output.index,
    output:
        candidates="results/candidates.csv",
        criteria="results/criteria.json",
        dft_ready=directory("results/dft_ready"),
    log:
        "logs/export.log",
    conda:
        "../envs/screen.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    params:
        criteria=Criteria.from_settings(SCREEN).to_json(),
        potential=POTENTIAL,
        seed=SETTINGS.seed,
    shell:
        "python -m pipeline.stages.export --relaxed {input.relaxed} --hull {input.hull}"
        " --known-index {input.known_index} --properties {input.properties}"
        " --pourbaix {input.pourbaix} --criteria {params.criteria:q}"
        " --potential {params.potential} --seed {params.seed}"
        " --out-candidates {output.candidates} --out-criteria {output.criteria}"
        " --out-dir {output.dft_ready} > {log} 2>&1"
