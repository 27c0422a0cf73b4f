# Energy above the hull of every relaxed candidate, with the main potential and, where
# configured, the second opinion's and the consensus potentials'. Energies only: the verdict
# is the export's.


def ehull_inputs(wildcards):
    """Relaxed candidates and hull phases of the main potential, the consensus ones and the
    second opinion."""
    inputs = {
        "relaxed": relaxed(),
        "references": hull_references(),
        "mp_entries": rules.fetch_data.output.mp_entries,
    }
    for potential in CONSENSUS:
        inputs[f"relaxed_{potential}"] = relaxed(potential)
        inputs[f"references_{potential}"] = hull_references(potential)
    if SECOND_OPINION:
        inputs["second_energies"] = expand(
            rules.second_opinion.output[0], potential=SECOND_OPINION
        )[0]
        inputs["second_references"] = hull_references(SECOND_OPINION)
    return inputs


def other_potentials_args(wildcards, input):
    args = " ".join(
        f"--consensus {p} {input['relaxed_' + p]} {input['references_' + p]}" for p in CONSENSUS
    )
    if SECOND_OPINION:
        args += (
            f" --second-opinion {SECOND_OPINION} {input.second_energies}"
            f" {input.second_references}"
        )
    return args


rule ehull:
    input:
        unpack(ehull_inputs),
    output:
        table="results/screen/hull.csv",
        phases="results/screen/hull_phases.csv",
    params:
        others=other_potentials_args,
        oxygen=SCREEN.oxygen_reference,
    log:
        "logs/screen/ehull.log",
    conda:
        "../envs/screen.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m pipeline.stages.ehull --relaxed {input.relaxed}"
        " --references-relaxed {input.references} --mp-entries {input.mp_entries}"
        " {params.others} --oxygen-reference {params.oxygen} --out {output.table} --out-phases {output.phases} > {log} 2>&1"
