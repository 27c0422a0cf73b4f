# Screening, first half: validate the generated crystals, prescreen them by their unrelaxed
# E_hull, relax the best (sharded), and place them on a hull relaxed with the same
# potential. See pipeline/stages/{validate,prescreen,relax,hull}.py.

SCREEN = config["screen"]
POTENTIAL = SCREEN["potential"]
SHARDS = list(range(SCREEN["shards"]))
CONSENSUS = [p for p in SCREEN["consensus"] if p != POTENTIAL]
SECOND_OPINION = SCREEN["second_opinion"]
if SECOND_OPINION == POTENTIAL:
    raise ValueError("config: screen.second_opinion must differ from screen.potential")


wildcard_constraints:
    shard=r"\d+",
    potential="chgnet|sevennet|m3gnet",


def potential_cli_args(potential):
    """--potential ... --batch-atoms: which potential runs, where and how batched."""
    model_file = SCREEN["checkpoints"].get(potential, "")
    batch_atoms = SCREEN.get("batch_atoms")
    return (
        f"--potential {potential}"
        + (f" --checkpoint {model_file}" if model_file else "")
        + f" --mode {SCREEN['relax_mode']} --device {SCREEN['device']}"
        + (f" --batch-atoms {batch_atoms}" if batch_atoms else "")
    )


def relax_cli_args(potential):
    """The potential's options and the relaxation's stopping rules."""
    return (
        potential_cli_args(potential)
        + f" --fmax {SCREEN['fmax']} --max-steps {SCREEN['max_steps']}"
    )


def relaxed(potential=POTENTIAL):
    """The candidates relaxed with ``potential`` (gather_relaxed's output)."""
    return expand(rules.gather_relaxed.output.relaxed, potential=potential)[0]


def relax_status(potential=POTENTIAL):
    return expand(rules.gather_relaxed.output.status, potential=potential)[0]


def hull_references(potential=POTENTIAL):
    """The hull's reference phases relaxed with ``potential``."""
    return expand(rules.relax_hull_references.output.relaxed, potential=potential)[0]


def hull_inputs(wildcards):
    """Relaxed candidates and references of the main potential and the consensus ones."""
    inputs = {
        "relaxed": relaxed(),
        "references": hull_references(),
        "mp_entries": rules.fetch_data.output.mp_entries,
    }
    for potential in CONSENSUS:
        inputs[f"relaxed_{potential}"] = relaxed(potential)
        inputs[f"references_{potential}"] = hull_references(potential)
    if SECOND_OPINION:
        inputs["second_energies"] = f"results/screen/second_opinion/{SECOND_OPINION}.json.gz"
        inputs["second_references"] = hull_references(SECOND_OPINION)
    return inputs


def consensus_args(wildcards, input):
    args = " ".join(
        f"--consensus {p} {input['relaxed_' + p]} {input['references_' + p]}" for p in CONSENSUS
    )
    if SECOND_OPINION:
        args += (
            f" --second-opinion {SECOND_OPINION} {input.second_energies}"
            f" {input.second_references}"
        )
    return args


rule validate:
    input:
        samples=sample_files(),
        training=rules.fetch_data.output.dataset,
    output:
        validated="results/screen/validated.json.gz",
        table="results/screen/validation.csv",
    params:
        chemsys=config["chemsys"],
        min_distance=SCREEN["min_distance"],
        volume=f"--min-volume-per-atom {SCREEN['min_volume_per_atom']}"
        f" --max-volume-per-atom {SCREEN['max_volume_per_atom']}",
    log:
        "logs/screen/validate.log",
    conda:
        "../envs/screen.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "python -m pipeline.stages.validate --samples {input.samples} --training {input.training}"
        " --chemsys {params.chemsys} --min-distance {params.min_distance} {params.volume}"
        " --out {output.validated} --out-table {output.table} > {log} 2>&1"


# Cached per potential: the output path names only the potential, and the rule reruns
# only when its own inputs or params change, so new candidates reuse the hull.
# The complete hull of one potential: reference phases plus every training formula's
# lowest polymorphs, relaxed. Cached per potential, and taken from the shipped hulls in
# screen.hull_shipped when their fingerprint (inputs, potential version, relax settings)
# matches, so the default run relaxes none of it.
rule relax_hull_references:
    input:
        references=rules.fetch_data.output.references,
        dataset=rules.fetch_data.output.known,
    output:
        relaxed="results/hull/{potential}/references_relaxed.json.gz",
        status="results/hull/{potential}/references_status.csv",
        provenance="results/hull/{potential}/references_provenance.json",
    params:
        relax=lambda wildcards: potential_cli_args(wildcards.potential)
        + f" --fmax {SCREEN['hull_relax']['fmax']}"
        + f" --max-steps {SCREEN['hull_relax']['max_steps']}",
        per_formula=SCREEN["hull_polymorphs_per_formula"],
        shipped=(
            f"--shipped {workflow_path(SCREEN['hull_shipped'])}"
            if SCREEN.get("hull_shipped")
            else ""
        ),
    log:
        "logs/hull/{potential}/relax_hull_references.log",
    conda:
        "../envs/screen.yaml"
    threads: 1
    resources:
        mem_mb=6000,
        runtime=180,
    shell:
        "python -m pipeline.stages.hull references --references {input.references}"
        " --dataset {input.dataset} --per-formula {params.per_formula} {params.shipped}"
        " {params.relax} --threads {threads} --out {output.relaxed}"
        " --out-status {output.status} --out-provenance {output.provenance} > {log} 2>&1"


rule prescreen:
    input:
        validated=rules.validate.output.validated,
        validation=rules.validate.output.table,
        references=hull_references(),
    output:
        prescreened="results/screen/prescreened.json.gz",
        table="results/screen/prescreen.csv",
    params:
        potential=potential_cli_args(POTENTIAL),
        # null: every unique valid sample is relaxed
        max_candidates=(
            f"--max-candidates {SCREEN['max_candidates']}"
            if SCREEN.get("max_candidates") is not None
            else ""
        ),
    log:
        "logs/screen/prescreen.log",
    conda:
        "../envs/screen.yaml"
    threads: 1
    resources:
        mem_mb=6000,
        runtime=30,
    shell:
        "python -m pipeline.stages.prescreen --validated {input.validated}"
        " --validation-table {input.validation} --references-relaxed {input.references}"
        " {params.max_candidates} {params.potential} --threads {threads}"
        " --out {output.prescreened} --out-table {output.table} > {log} 2>&1"


# One rule relaxes with any potential: the main one (screen.potential) and each consensus one;
# only the main potential's relaxations are symmetrised and relaxed again.
rule relax:
    input:
        rules.prescreen.output.prescreened,
    output:
        shard="results/screen/relax/{potential}/shard_{shard}.json.gz",
        status="results/screen/relax/{potential}/shard_{shard}.csv",
    params:
        relax=lambda wildcards: relax_cli_args(wildcards.potential),
        shards=SCREEN["shards"],
        symmetrise=lambda wildcards: (
            "--symmetrise"
            if wildcards.potential == POTENTIAL and SCREEN["symmetrise"]
            else ""
        ),
    log:
        "logs/screen/relax/{potential}/shard_{shard}.log",
    conda:
        "../envs/screen.yaml"
    threads: 1
    resources:
        mem_mb=6000,
        runtime=120,
    shell:
        "python -m pipeline.stages.relax shard --input {input} --shard {wildcards.shard}"
        " --shards {params.shards} {params.relax} {params.symmetrise} --threads {threads}"
        " --out {output.shard} --out-status {output.status} > {log} 2>&1"


rule gather_relaxed:
    input:
        shards=expand(rules.relax.output.shard, shard=SHARDS, allow_missing=True),
        status=expand(rules.relax.output.status, shard=SHARDS, allow_missing=True),
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


# The second opinion: the relaxed candidates' energies with another potential, unrelaxed.
rule single_point:
    input:
        relaxed(),
    output:
        "results/screen/second_opinion/{potential}.json.gz",
    params:
        potential=lambda wildcards: potential_cli_args(wildcards.potential),
    log:
        "logs/screen/second_opinion/{potential}.log",
    conda:
        "../envs/screen.yaml"
    threads: 1
    resources:
        mem_mb=6000,
        runtime=30,
    shell:
        "python -m pipeline.stages.single_point --input {input} {params.potential}"
        " --threads {threads} --out {output} > {log} 2>&1"


rule hull:
    input:
        unpack(hull_inputs),
    output:
        table="results/screen/hull.csv",
        phases="results/screen/hull_phases.csv",
    params:
        consensus=consensus_args,
        e_hull_max=SCREEN["e_hull"]["metastable"],
        e_hull_synthesizable=SCREEN["e_hull"]["synthesizable"],
    log:
        "logs/screen/hull.log",
    conda:
        "../envs/screen.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m pipeline.stages.hull ehull --relaxed {input.relaxed}"
        " --references-relaxed {input.references} --mp-entries {input.mp_entries}"
        " {params.consensus} --e-hull-max {params.e_hull_max}"
        " --e-hull-synthesizable {params.e_hull_synthesizable} --out {output.table}"
        " --out-phases {output.phases} > {log} 2>&1"
