rule sample:
    input:
        model=rules.train.output.model,
        targets=rules.compositions.output.targets,
    output:
        samples="results/samples/{model}/samples.json.gz",
        report="results/samples/{model}/sample_report.csv",
    log:
        "logs/sample/{model}.log",
    wildcard_constraints:
        model="|".join(MODELS),
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=gpus(),
    params:
        options=lambda wc: model_options("sample", wc.model),
        per_composition=config["sample"]["per_composition"],
        seed=config["seed"],
        device=config["train"]["device"],
        # a discovery round's budget file (rules/discovery.smk); round 1 samples per_composition
        budget="",
    shell:
        "python -m pipeline.stages.sample --model {wildcards.model} --model-path {input.model}"
        " --targets {input.targets} --per-composition {params.per_composition} {params.budget}"
        " --options {params.options:q} --seed {params.seed} --device {params.device}"
        " --out {output.samples} --out-report {output.report} > {log} 2>&1"
