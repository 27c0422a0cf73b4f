# The candidate explorer (a static page set that opens from disk) and the ASE database of the
# relaxed structures. See docs/explorer.md.


rule explorer:
    input:
        relaxed=relaxed(),
        candidates=rules.export.output.candidates,
        criteria=rules.export.output.criteria,
        hull=rules.ehull.output.table,
        properties=rules.properties.output.table,
        pourbaix=rules.pourbaix.output.table,
        validation=rules.validate.output.table,
        relax_status=relax_status(),
        references=hull_references(),
        known=rules.fetch_data.output.known,
        dft_ready=rules.export.output.dft_ready,
        dft_check=dft_verdict,
    output:
        page=directory("results/explorer"),
        database="results/candidates.db",
    log:
        "logs/explorer.log",
    conda:
        "../envs/screen.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        chemsys=SETTINGS.chemsys,
        oxygen=SCREEN.oxygen_reference,
        dft_check=dft_verdict_arg,
    shell:
        "python -m pipeline.stages.explorer --relaxed {input.relaxed}"
        " --candidates {input.candidates} --criteria {input.criteria} --hull {input.hull}"
        " --properties {input.properties} --pourbaix {input.pourbaix}"
        " --validation {input.validation} --relax-status {input.relax_status}"
        " --references {input.references} --known {input.known}"
        " --dft-ready {input.dft_ready} {params.dft_check} --chemsys {params.chemsys}"
        " --oxygen-reference {params.oxygen}"
        " --out-dir {output.page} --out-db {output.database} > {log} 2>&1"
