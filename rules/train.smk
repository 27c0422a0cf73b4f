# Checkpoints go to results/train/{model}/checkpoints/, which is not a declared output:
# Snakemake deletes the outputs of a failed job, and a rerun must find them to resume.


# The encoded file of each representation a model can train on (pipeline.models.registry).
ENCODED = {
    "pointcloud": rules.encode.output.tensors,
    "pointcloud_properties": rules.training_properties.output.labelled,
    "crystens": rules.encode_crystens.output.tensors,
    "graph": rules.encode_graph.output.graphs,
    "wyckoff": rules.encode_wyckoff.output.crystals,
}


rule train:
    input:
        data=lambda wc: ENCODED[model_registry.representation(wc.model)],
    output:
        model="results/train/{model}/model.pt",
        model_info="results/train/{model}/model.json",
        losses="results/train/{model}/losses.csv",
        plot=report(
            "results/train/{model}/loss_curve.png",
            category="2. Generative models",
            subcategory="{model}",
            caption="../report/loss_curve.rst",
        ),
    log:
        "logs/train/{model}.log",
    wildcard_constraints:
        model="|".join(MODELS),
    conda:
        "../envs/torch.yaml"
    threads: config["train"]["threads"]
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=gpus(),
    params:
        out_dir="results/train/{model}",
        options=lambda wc: model_options("train", wc.model),
        seed=config["seed"],
        device=config["train"]["device"],
        checkpoint_every=config["train"]["checkpoint_every"],
    shell:
        "python -m pipeline.stages.train --model {wildcards.model} --data {input.data}"
        " --out-dir {params.out_dir} --options {params.options:q} --seed {params.seed}"
        " --device {params.device} --threads {threads}"
        " --checkpoint-every {params.checkpoint_every} > {log} 2>&1"
