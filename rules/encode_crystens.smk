# Built only when a CrysTens model (crystens_ddpm, crystens_gan, crystens_wgan) is in
# train.models: the train rule asks for results/encoded/crystens.npz.


rule encode_crystens:
    input:
        dataset=rules.augment.output.dataset,
    output:
        tensors="results/encoded/crystens.npz",
    log:
        "logs/encode_crystens.log",
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    params:
        chemsys=config["chemsys"],
    shell:
        "python -m pipeline.stages.encode_crystens --dataset {input.dataset} --chemsys {params.chemsys}"
        " --out {output.tensors} > {log} 2>&1"
