# The known structures of the run, reduced once: the data set with its held-out formulas and
# the main potential's relaxed hull phases. Validate and export look candidates up in it.


rule known_index:
    input:
        known=rules.fetch_data.output.known,
        hull_phases=hull_references(),
    output:
        index="results/screen/known_structures.json.gz",
    log:
        "logs/screen/known_index.log",
    conda:
        "../envs/screen.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    shell:
        "python -m pipeline.stages.known_index --known {input.known} {input.hull_phases}"
        " --out {output.index} > {log} 2>&1"
