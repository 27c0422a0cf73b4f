# The complete hull of one potential: reference phases plus every known formula's lowest
# polymorphs, relaxed. Cached per potential (the output path names only the potential, so new
# candidates reuse it), and taken from the shipped hulls in screen.hull_shipped when their
# fingerprint (inputs, potential version, relax settings) matches, so the default run relaxes
# none of it.


rule hull_references:
    input:
        references=rules.fetch_data.output.references,
        dataset=rules.fetch_data.output.known,
    output:
        relaxed="results/hull/{potential}/references_relaxed.json.gz",
        status="results/hull/{potential}/references_status.csv",
        provenance="results/hull/{potential}/references_provenance.json",
    log:
        "logs/hull/{potential}/hull_references.log",
    conda:
        "../envs/screen.yaml"
    threads: 1
    resources:
        mem_mb=6000,
        runtime=180,
    params:
        relax=lambda wildcards: relax_cli_args(
            wildcards.potential, SCREEN.hull_relax.fmax, SCREEN.hull_relax.max_steps
        ),
        per_formula=SCREEN.hull_polymorphs_per_formula,
        shipped=(f"--shipped {workflow_path(SCREEN.hull_shipped)}" if SCREEN.hull_shipped else ""),
    shell:
        "python -m pipeline.stages.hull_references --references {input.references}"
        " --dataset {input.dataset} --per-formula {params.per_formula} {params.shipped}"
        " {params.relax} --threads {threads} --out {output.relaxed}"
        " --out-status {output.status} --out-provenance {output.provenance} > {log} 2>&1"
