# One single-point energy per valid candidate: the unrelaxed E_hull ranks what is relaxed.


rule prescreen:
    input:
        validated=rules.validate.output.validated,
        validation=rules.validate.output.table,
        references=hull_references(),
    output:
        prescreened="results/screen/prescreened.json.gz",
        table="results/screen/prescreen.csv",
    log:
        "logs/screen/prescreen.log",
    conda:
        "../envs/screen.yaml"
    threads: 1
    resources:
        mem_mb=6000,
        runtime=30,
    params:
        potential=potential_cli_args(POTENTIAL),
        oxygen=SCREEN.oxygen_reference,
        # null: every unique valid sample is relaxed
        max_candidates=(
            f"--max-candidates {SCREEN.max_candidates}"
            if SCREEN.max_candidates is not None
            else ""
        ),
    shell:
        "python -m pipeline.stages.prescreen --validated {input.validated}"
        " --validation-table {input.validation} --references-relaxed {input.references}"
        " {params.max_candidates} {params.potential} --oxygen-reference {params.oxygen}"
        " --threads {threads}"
        " --out {output.prescreened} --out-table {output.table} > {log} 2>&1"
