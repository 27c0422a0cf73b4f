# The computing environment of the run (pipeline/stages/environment.py): releases, CPU, BLAS,
# threads, and the packages installed at another release than constraints.txt pins. It is
# recorded again whenever the candidates are relaxed again, with the relax jobs' threads.


rule environment:
    input:
        relaxed=relaxed(),
        constraints=workflow_path("constraints.txt"),
    output:
        "results/provenance/environment.json",
    log:
        "logs/provenance/environment.log",
    conda:
        "../envs/screen.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    shell:
        "python -m pipeline.stages.environment --threads {threads}"
        " --constraints {input.constraints} --out {output} > {log} 2>&1"
