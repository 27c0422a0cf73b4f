# Discovery rounds (discovery.rounds > 1; docs/architecture.md). Round 1 is the run's DAG at
# its own paths. Round r >= 2, under results/rounds/{round}/: `confirm` takes round r-1's
# verdict and confirms its finds (known, training set and hulls of round r: round r-1's plus
# them), `budget` shares round r's samples among the sources by their confirmed hits so far,
# `finetune` continues each learned source from its round r-1 model on the enlarged training
# set, and round 1's rules, inherited (`use rule <rule> as <rule>_round`, so a change to a
# rule reaches every round), screen round r's samples. A round's rules read earlier rounds
# only, never discovery.rounds, so a rerun with more rounds reuses the finished ones. At the
# end, `discovery` places every round's candidates on the final hull (round N+1's, which
# `confirm` makes from round N) and draws the discovery curve.


wildcard_constraints:
    round=r"[2-9]|[1-9]\d+",


rule confirm:
    input:
        unpack(confirm_inputs),
    output:
        **{
            f"hull_{p}": f"results/rounds/{{round}}/hull/{p}/references_relaxed.json.gz"
            for p in HULL_POTENTIALS
        },
        confirmed="results/rounds/{round}/confirmed.json.gz",
        table="results/rounds/{round}/confirmed.csv",
        known="results/rounds/{round}/known.json.gz",
        training="results/rounds/{round}/training.json.gz",
    log:
        "logs/rounds/{round}/confirm.log",
    conda:
        "../envs/screen.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        previous=previous_round,
        criteria=Criteria.from_settings(SCREEN).to_json(),
        threshold=DISCOVERY.confirm_e_hull,
        hulls=confirm_hull_args,
    shell:
        "python -m pipeline.stages.confirm --round {params.previous}"
        " --candidates {input.candidates} --relaxed {input.relaxed}"
        " --criteria {params.criteria:q} --confirm-e-hull {params.threshold}"
        " --known {input.known} --training {input.training} {params.hulls}"
        " --out-confirmed {output.confirmed} --out-table {output.table}"
        " --out-known {output.known} --out-training {output.training} > {log} 2>&1"


rule budget:
    input:
        unpack(budget_inputs),
    output:
        table="results/rounds/{round}/budget.csv",
    log:
        "logs/rounds/{round}/budget.log",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        reports=sample_report_args,
        sources=" ".join(MODELS),
        per_composition=SETTINGS.sample.per_composition,
        split=DISCOVERY.split,
        floor=DISCOVERY.floor,
        seed=SETTINGS.seed,
    shell:
        "python -m pipeline.stages.budget --round {wildcards.round} --sources {params.sources}"
        " {params.reports} --confirmations {input.confirmations}"
        " --per-composition {params.per_composition} --split {params.split}"
        " --floor {params.floor} --seed {params.seed} --out {output.table} > {log} 2>&1"


# The training set of a round, encoded for the models that fine-tune (wyckoff_diffusion).


use rule encode_wyckoff as encode_wyckoff_round with:
    input:
        dataset=rules.confirm.output.training,
    output:
        crystals="results/rounds/{round}/encoded/wyckoff.npz",
    log:
        "logs/rounds/{round}/encode_wyckoff.log",


rule finetune:
    input:
        unpack(finetune_inputs),
    output:
        model="results/rounds/{round}/train/{model}/model.pt",
        model_info="results/rounds/{round}/train/{model}/model.json",
        losses="results/rounds/{round}/train/{model}/losses.csv",
        plot="results/rounds/{round}/train/{model}/loss_curve.png",
    log:
        "logs/rounds/{round}/finetune/{model}.log",
    wildcard_constraints:
        model="|".join(MODELS),
    conda:
        "../envs/torch.yaml"
    threads: config["train"]["threads"]
    resources:
        mem_mb=8000,
        runtime=60,
        gpu=gpus(),
    params:
        out_dir="results/rounds/{round}/train/{model}",
        data=lambda wildcards, input: f"--data {input.data}" if "data" in input.keys() else "",
        steps=DISCOVERY.finetune_steps,
        seed=this_round_seed,
        device=config["train"]["device"],
        checkpoint_every=config["train"]["checkpoint_every"],
    shell:
        "python -m pipeline.stages.finetune --model {wildcards.model} --parent {input.parent}"
        " {params.data} --confirmed {input.confirmed} --steps {params.steps}"
        " --seed {params.seed} --device {params.device} --threads {threads}"
        " --checkpoint-every {params.checkpoint_every} --out-dir {params.out_dir} > {log} 2>&1"


use rule sample as sample_round with:
    input:
        model=rules.finetune.output.model,
        targets=rules.compositions.output.targets,
        budget=rules.budget.output.table,
    output:
        samples="results/rounds/{round}/samples/{model}/samples.json.gz",
        report="results/rounds/{round}/samples/{model}/sample_report.csv",
    log:
        "logs/rounds/{round}/sample/{model}.log",
    params:
        seed=this_round_seed,
        budget=lambda wildcards, input: f"--budget {input.budget}",


use rule known_index as known_index_round with:
    input:
        known=rules.confirm.output.known,
        hull_phases=rules.confirm.output[f"hull_{POTENTIAL}"],
    output:
        index="results/rounds/{round}/screen/known_structures.json.gz",
    log:
        "logs/rounds/{round}/screen/known_index.log",


use rule validate as validate_round with:
    input:
        samples=expand(rules.sample_round.output.samples, model=MODELS, allow_missing=True),
        known_index=rules.known_index_round.output.index,
    output:
        validated="results/rounds/{round}/screen/validated.json.gz",
        table="results/rounds/{round}/screen/validation.csv",
    log:
        "logs/rounds/{round}/screen/validate.log",


use rule prescreen as prescreen_round with:
    input:
        validated=rules.validate_round.output.validated,
        validation=rules.validate_round.output.table,
        references=rules.confirm.output[f"hull_{POTENTIAL}"],
    output:
        prescreened="results/rounds/{round}/screen/prescreened.json.gz",
        table="results/rounds/{round}/screen/prescreen.csv",
    log:
        "logs/rounds/{round}/screen/prescreen.log",


use rule relax as relax_round with:
    input:
        prescreened=rules.prescreen_round.output.prescreened,
        references=lambda wildcards: (
            round_hull(int(wildcards.round), POTENTIAL)
            if wildcards.potential == POTENTIAL and SCREEN.early_stop.enabled
            else []
        ),
    output:
        shard="results/rounds/{round}/screen/relax/{potential}/shard_{shard}.json.gz",
        status="results/rounds/{round}/screen/relax/{potential}/shard_{shard}.csv",
    log:
        "logs/rounds/{round}/screen/relax/{potential}/shard_{shard}.log",


use rule gather_relaxed as gather_relaxed_round with:
    input:
        shards=expand(
            rules.relax_round.output.shard, shard=range(SCREEN.shards), allow_missing=True
        ),
        status=expand(
            rules.relax_round.output.status, shard=range(SCREEN.shards), allow_missing=True
        ),
    output:
        relaxed="results/rounds/{round}/screen/relax/{potential}/relaxed.json.gz",
        status="results/rounds/{round}/screen/relax/{potential}/relax_status.csv",
    log:
        "logs/rounds/{round}/screen/relax/{potential}/gather.log",


# The main potential's relaxed candidates of a round (still holding {round}).


ROUND_RELAXED = expand(
    rules.gather_relaxed_round.output.relaxed, potential=POTENTIAL, allow_missing=True
)


use rule second_opinion as second_opinion_round with:
    input:
        ROUND_RELAXED,
    output:
        "results/rounds/{round}/screen/second_opinion/{potential}.json.gz",
    log:
        "logs/rounds/{round}/screen/second_opinion/{potential}.log",


use rule repeat as repeat_round with:
    input:
        starts=rules.prescreen_round.output.prescreened,
        relaxed=ROUND_RELAXED,
        references=rules.confirm.output[f"hull_{POTENTIAL}"],
    output:
        shard="results/rounds/{round}/screen/relax/repeat/shard_{shard}.json.gz",
        status="results/rounds/{round}/screen/relax/repeat/shard_{shard}.csv",
    log:
        "logs/rounds/{round}/screen/relax/repeat/shard_{shard}.log",


use rule gather_relaxed as gather_repeat_round with:
    input:
        shards=expand(
            rules.repeat_round.output.shard, shard=range(SCREEN.shards), allow_missing=True
        ),
        status=expand(
            rules.repeat_round.output.status, shard=range(SCREEN.shards), allow_missing=True
        ),
    output:
        relaxed="results/rounds/{round}/screen/relax/repeat/relaxed.json.gz",
        status="results/rounds/{round}/screen/relax/repeat/relax_status.csv",
    log:
        "logs/rounds/{round}/screen/relax/repeat/gather.log",


use rule ehull as ehull_round with:
    input:
        unpack(ehull_round_inputs),
    output:
        table="results/rounds/{round}/screen/hull.csv",
        phases="results/rounds/{round}/screen/hull_phases.csv",
    log:
        "logs/rounds/{round}/screen/ehull.log",


use rule properties as properties_round with:
    input:
        relaxed=ROUND_RELAXED,
    output:
        table="results/rounds/{round}/screen/properties.csv",
    log:
        "logs/rounds/{round}/properties.log",


use rule pourbaix as pourbaix_round with:
    input:
        relaxed=ROUND_RELAXED,
        references=rules.confirm.output[f"hull_{POTENTIAL}"],
        experimental=workflow_path("resources/thermo/oxide_formation_free_energies.csv"),
    output:
        table="results/rounds/{round}/screen/pourbaix.csv",
        scheme="results/rounds/{round}/screen/pourbaix_scheme.json",
    log:
        "logs/rounds/{round}/pourbaix.log",


use rule export as export_round with:
    input:
        relaxed=ROUND_RELAXED,
        hull=rules.ehull_round.output.table,
        properties=rules.properties_round.output.table,
        pourbaix=rules.pourbaix_round.output.table,
        known_index=rules.known_index_round.output.index,
    output:
        candidates="results/rounds/{round}/candidates.csv",
        criteria="results/rounds/{round}/criteria.json",
        dft_ready=directory("results/rounds/{round}/dft_ready"),
    log:
        "logs/rounds/{round}/export.log",


rule discovery:
    input:
        unpack(discovery_inputs),
    output:
        candidates="results/discovery/candidates.csv",
        rounds="results/discovery/rounds.csv",
        curve=report(
            "results/report/discovery_curve.png",
            category="6. Discovery",
            caption="../report/discovery_curve.rst",
        ),
    log:
        "logs/discovery.log",
    conda:
        "../envs/screen.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        files=discovery_args,
        criteria=Criteria.from_settings(SCREEN).to_json(),
        threshold=DISCOVERY.confirm_e_hull,
        oxygen=SCREEN.oxygen_reference,
    shell:
        "python -m pipeline.stages.discovery {params.files} --criteria {params.criteria:q}"
        " --confirm-e-hull {params.threshold} --oxygen-reference {params.oxygen}"
        " --out {output.candidates} --out-rounds {output.rounds}"
        " --out-plot {output.curve} > {log} 2>&1"
