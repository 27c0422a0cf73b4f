# The screen's plots and the generators' quality metrics, registered for `snakemake --report`.


rule report_plots:
    input:
        candidates=rules.export.output.candidates,
        references=hull_references(),
        relaxed=relaxed(),
        training=rules.fetch_data.output.dataset,
    output:
        e_hull=report("results/report/e_hull_histogram.png", category="4. Screen",
                      caption="../report/e_hull_histogram.rst"),
        ternary=report("results/report/ternary_hull.png", category="4. Screen",
                       caption="../report/ternary_hull.rst"),
        gap_pourbaix=report("results/report/band_gap_vs_pourbaix.png", category="4. Screen",
                            caption="../report/band_gap_vs_pourbaix.rst"),
        lattice=report("results/report/lattice_parameters.png", category="5. Quality",
                       caption="../report/lattice_parameters.rst"),
    params:
        chemsys=config["chemsys"],
        metastable=config["screen"]["e_hull"]["metastable"],
        synthesizable=config["screen"]["e_hull"]["synthesizable"],
        gap_window=f"{config['screen']['band_gap']['min']} {config['screen']['band_gap']['max']}",
        gap_level=config["screen"]["band_gap"]["level"],
        max_delta_g=config["screen"]["pourbaix"]["max_delta_g"],
    log:
        "logs/report_plots.log",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=15,
    shell:
        "python -m pipeline.stages.report --chemsys {params.chemsys} --candidates {input.candidates}"
        " --references {input.references} --relaxed {input.relaxed}"
        " --training {input.training} --metastable {params.metastable}"
        " --synthesizable {params.synthesizable} --gap-window {params.gap_window}"
        " --gap-level {params.gap_level} --max-delta-g-pbx {params.max_delta_g}"
        " --out-e-hull {output.e_hull} --out-ternary {output.ternary}"
        " --out-gap-pourbaix {output.gap_pourbaix} --out-lattice {output.lattice} > {log} 2>&1"


rule evaluate:
    input:
        samples=sample_files(),
        relaxed=relaxed(),
        hull=rules.hull.output.table,
        training=rules.fetch_data.output.dataset,
        training_symmetry=rules.fetch_data.output.symmetry,
        hull_references=hull_references(),
    output:
        metrics="results/evaluation/metrics.json",
        table=report("results/evaluation/metrics.html", category="5. Quality",
                     caption="../report/metrics.rst"),
        symmetry="results/evaluation/symmetry.csv",
        plot=report("results/report/crystal_systems.png", category="5. Quality",
                    caption="../report/crystal_systems.rst"),
    params:
        metastable=config["screen"]["e_hull"]["metastable"],
        synthesizable=config["screen"]["e_hull"]["synthesizable"],
    log:
        "logs/evaluate.log",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "python -m pipeline.stages.evaluate --samples {input.samples} --relaxed {input.relaxed}"
        " --hull {input.hull} --training {input.training}"
        " --training-symmetry {input.training_symmetry}"
        " --hull-references {input.hull_references} --metastable {params.metastable}"
        " --synthesizable {params.synthesizable} --out {output.metrics}"
        " --out-table {output.table} --out-symmetry {output.symmetry}"
        " --out-plot {output.plot} > {log} 2>&1"
