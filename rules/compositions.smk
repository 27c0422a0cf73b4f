rule compositions:
    input:
        encoded=rules.encode.output.tensors,
        summary=rules.fetch_data.output.summary,
    output:
        targets="results/compositions/targets.csv",
    log:
        "logs/compositions.log",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        # elements left out get their common oxidation states (the log says which)
        oxidation_states=" ".join(
            ["--oxidation-states"]
            + [
                f"{el}={low}:{high}"
                for el, (low, high) in config["compositions"]["oxidation_states"].items()
            ]
        ),
        all_elements=(
            "--require-all-elements"
            if config["compositions"]["require_all_elements"]
            else "--no-require-all-elements"
        ),
        target_set=config["sample"]["target_set"],
        max_targets=config["sample"]["max_targets"],
        # explicit compositions: exactly these are sampled
        targets=(
            " ".join(["--targets", *config["compositions"]["targets"]])
            if config["compositions"].get("targets")
            else ""
        ),
    shell:
        "python -m pipeline.stages.compositions --encoded {input.encoded} --summary {input.summary}"
        " {params.oxidation_states} {params.all_elements}"
        " --target-set {params.target_set} --max-targets {params.max_targets} {params.targets}"
        " --out {output.targets} > {log} 2>&1"
