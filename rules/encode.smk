rule encode:
    input:
        dataset=rules.augment.output.dataset,
    output:
        tensors="results/encoded/pointcloud.npz",
        compositions="results/encoded/compositions.csv",
    log:
        "logs/encode.log",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        chemsys=config["chemsys"],
        max_atoms=max_atoms_arg(),
    shell:
        "python -m pipeline.stages.encode --dataset {input.dataset} --chemsys {params.chemsys}"
        " {params.max_atoms} --out {output.tensors}"
        " --out-compositions {output.compositions} > {log} 2>&1"
