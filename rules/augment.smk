rule augment:
    input:
        dataset=rules.fetch_data.output.dataset,
    output:
        dataset="results/augment/augmented.json.gz",
    log:
        "logs/augment.log",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        chemsys=config["chemsys"],
        max_atoms=max_atoms_arg(),
        per_composition=config["augment"]["per_composition"],
        operations=" ".join(config["augment"]["operations"]),
        seed=config["seed"],
    shell:
        "python -m pipeline.stages.augment --dataset {input.dataset} --chemsys {params.chemsys}"
        " {params.max_atoms} --per-composition {params.per_composition}"
        " --operations {params.operations} --seed {params.seed} --out {output.dataset}"
        " > {log} 2>&1"
