# One rule relaxes with any potential: the main one (screen.potential) and each consensus one,
# in screen.shards shards; only the main potential's relaxations are symmetrised and relaxed
# again.


rule relax:
    input:
        prescreened=rules.prescreen.output.prescreened,
        references=lambda wildcards: (
            hull_references()
            if wildcards.potential == POTENTIAL and SCREEN.early_stop.enabled
            else []
        ),
    output:
        shard="results/screen/relax/{potential}/shard_{shard}.json.gz",
        status="results/screen/relax/{potential}/shard_{shard}.csv",
    log:
        "logs/screen/relax/{potential}/shard_{shard}.log",
    conda:
        "../envs/screen.yaml"
    threads: 1
    resources:
        mem_mb=6000,
        runtime=120,
    params:
        relax=lambda wildcards: relax_cli_args(wildcards.potential, SCREEN.fmax, SCREEN.max_steps),
        shards=SCREEN.shards,
        early_stop=early_stop_args,
        symmetrise=lambda wildcards: (
            "--symmetrise" if wildcards.potential == POTENTIAL and SCREEN.symmetrise else ""
        ),
    shell:
        "python -m pipeline.stages.relax shard --input {input.prescreened}"
        " --shard {wildcards.shard} --shards {params.shards} {params.relax} {params.symmetrise}"
        " {params.early_stop} --threads {threads}"
        " --out {output.shard} --out-status {output.status} > {log} 2>&1"


rule gather_relaxed:
    input:
        shards=expand(rules.relax.output.shard, shard=range(SCREEN.shards), allow_missing=True),
        status=expand(rules.relax.output.status, shard=range(SCREEN.shards), allow_missing=True),
    output:
        relaxed="results/screen/relax/{potential}/relaxed.json.gz",
        status="results/screen/relax/{potential}/relax_status.csv",
    log:
        "logs/screen/relax/{potential}/gather.log",
    conda:
        "../envs/screen.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m pipeline.stages.relax gather --shard-files {input.shards}"
        " --status-files {input.status} --out {output.relaxed}"
        " --out-status {output.status} > {log} 2>&1"


# Is a verdict robust? The candidates near a threshold relaxed again along the same path from a
# start rattled by screen.verdict_check.rattle Å (pipeline/screen/verdicts.py), in
# screen.shards shards as the relaxation is.
rule repeat:
    input:
        starts=rules.prescreen.output.prescreened,
        relaxed=relaxed(),
        references=hull_references(),
    output:
        shard="results/screen/relax/repeat/shard_{shard}.json.gz",
        status="results/screen/relax/repeat/shard_{shard}.csv",
    log:
        "logs/screen/relax/repeat/shard_{shard}.log",
    conda:
        "../envs/screen.yaml"
    threads: 1
    resources:
        mem_mb=6000,
        runtime=120,
    params:
        relax=relax_cli_args(POTENTIAL, SCREEN.fmax, SCREEN.max_steps),
        symmetrise="--symmetrise" if SCREEN.symmetrise else "",
        criteria=Criteria.from_settings(SCREEN).to_json(),
        check=f"--window {SCREEN.verdict_check.window} --rattle {SCREEN.verdict_check.rattle}",
        oxygen=SCREEN.oxygen_reference,
        seed=SETTINGS.seed,
        shards=SCREEN.shards,
    shell:
        "python -m pipeline.stages.relax repeat --input {input.starts} --relaxed {input.relaxed}"
        " --references-relaxed {input.references} --oxygen-reference {params.oxygen}"
        " --criteria {params.criteria:q} {params.check} --seed {params.seed} {params.relax}"
        " --shard {wildcards.shard} --shards {params.shards}"
        " {params.symmetrise} --threads {threads} --out {output.shard}"
        " --out-status {output.status} > {log} 2>&1"


use rule gather_relaxed as gather_repeat with:
    input:
        shards=expand(rules.repeat.output.shard, shard=range(SCREEN.shards)),
        status=expand(rules.repeat.output.status, shard=range(SCREEN.shards)),
    output:
        relaxed="results/screen/relax/repeat/relaxed.json.gz",
        status="results/screen/relax/repeat/relax_status.csv",
    log:
        "logs/screen/relax/repeat/gather.log",
