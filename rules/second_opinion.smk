# The second opinion: the relaxed candidates' energies with another potential, unrelaxed.


rule second_opinion:
    input:
        relaxed(),
    output:
        "results/screen/second_opinion/{potential}.json.gz",
    log:
        "logs/screen/second_opinion/{potential}.log",
    conda:
        "../envs/screen.yaml"
    threads: 1
    resources:
        mem_mb=6000,
        runtime=30,
    params:
        potential=lambda wildcards: potential_cli_args(wildcards.potential),
    shell:
        "python -m pipeline.stages.second_opinion --input {input} {params.potential}"
        " --threads {threads} --out {output} > {log} 2>&1"
