# The generators' quality metrics beside Kim et al.'s, counted from the screen's tables.


rule evaluate:
    input:
        samples=sample_files(),
        validation=rules.validate.output.table,
        relaxed=relaxed(),
        candidates=rules.export.output.candidates,
        criteria=rules.export.output.criteria,
        training=rules.fetch_data.output.dataset,
        training_symmetry=rules.fetch_data.output.symmetry,
    output:
        metrics="results/evaluation/metrics.json",
        table=report(
            "results/evaluation/metrics.html",
            category="5. Quality",
            caption="../report/metrics.rst",
        ),
        symmetry="results/evaluation/symmetry.csv",
        plot=report(
            "results/report/crystal_systems.png",
            category="5. Quality",
            caption="../report/crystal_systems.rst",
        ),
    log:
        "logs/evaluate.log",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "python -m pipeline.stages.evaluate --samples {input.samples}"
        " --validation {input.validation} --relaxed {input.relaxed}"
        " --candidates {input.candidates} --criteria {input.criteria}"
        " --training {input.training} --training-symmetry {input.training_symmetry}"
        " --out {output.metrics} --out-table {output.table} --out-symmetry {output.symmetry}"
        " --out-plot {output.plot} > {log} 2>&1"
