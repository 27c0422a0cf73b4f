# The candidate explorer (a static page set that opens from disk) and the ASE database of the
# relaxed structures. See docs/explorer.md.


rule explorer:
    input:
        relaxed=relaxed(),
        candidates=rules.export.output.candidates,
        hull=rules.hull.output.table,
        properties=rules.properties.output.table,
        pourbaix=rules.pourbaix.output.table,
        validation=rules.validate.output.table,
        relax_status=relax_status(),
        references=hull_references(),
        training=rules.fetch_data.output.dataset,
        dft_ready=rules.export.output.dft_ready,
    output:
        page=directory("results/explorer"),
        database="results/candidates.db",
    params:
        chemsys=config["chemsys"],
        max_e_hull=config["screen"]["e_hull"]["synthesizable"],
        gap_window=f"{config['screen']['band_gap']['min']} {config['screen']['band_gap']['max']}",
        gap_level=config["screen"]["band_gap"]["level"],
        max_delta_g=config["screen"]["pourbaix"]["max_delta_g"],
    log:
        "logs/explorer.log",
    conda:
        "../envs/screen.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    shell:
        "python -m pipeline.stages.explorer --relaxed {input.relaxed}"
        " --candidates {input.candidates} --hull {input.hull} --properties {input.properties}"
        " --pourbaix {input.pourbaix} --validation {input.validation}"
        " --relax-status {input.relax_status} --references {input.references}"
        " --training {input.training} --dft-ready {input.dft_ready}"
        " --chemsys {params.chemsys}"
        " --max-e-hull {params.max_e_hull} --gap-window {params.gap_window}"
        " --gap-level {params.gap_level} --max-delta-g-pbx {params.max_delta_g}"
        " --out-dir {output.page} --out-db {output.database} > {log} 2>&1"
