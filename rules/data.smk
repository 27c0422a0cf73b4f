rule fetch_data:
    input:
        unpack(data_inputs),
    output:
        dataset="results/data/dataset.json.gz",
        # the dataset with data.exclude_formulas' held-out structures: the complete hull's input
        known="results/data/known.json.gz",
        references="results/data/reference_phases.json.gz",
        mp_entries="results/data/mp_entries.json.gz",
        summary="results/data/summary.csv",
        rejected="results/data/rejected.csv",
        symmetry="results/data/symmetry.csv",
        plot=report(
            "results/data/composition_distribution.png",
            category="1. Data",
            caption="../report/composition_distribution.rst",
        ),
    log:
        "logs/fetch_data.log",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        source=config["data"]["source"],
        chemsys=SETTINGS.chemsys,
        max_atoms=max_atoms_arg(),
        cif_dir=(
            f"--cif-dir {workflow_path(SETTINGS.data.cif_dir)}" if SETTINGS.data.cif_dir else ""
        ),
        exclude=(
            " ".join(["--exclude-formulas", *SETTINGS.data.exclude_formulas])
            if SETTINGS.data.exclude_formulas
            else ""
        ),
        mp=" ".join(
            [
                (
                    "--mp-require-all-elements"
                    if SETTINGS.data.mp.require_all_elements
                    else "--no-mp-require-all-elements"
                ),
                f"--mp-reference-ehull {SETTINGS.data.mp.reference_e_above_hull}",
                f"--mp-thermo-type {SETTINGS.data.mp.thermo_type}",
            ]
        ),
    shell:
        "python -m pipeline.stages.data --source {params.source} --chemsys {params.chemsys}"
        " {params.max_atoms} {params.cif_dir} {params.mp} {params.exclude}"
        " --bundled-dataset {input.dataset} --bundled-references {input.references}"
        " --out-dataset {output.dataset} --out-known {output.known}"
        " --out-references {output.references}"
        " --out-mp-entries {output.mp_entries} --out-summary {output.summary}"
        " --out-rejected {output.rejected} --out-plot {output.plot}"
        " --out-symmetry {output.symmetry} > {log} 2>&1"
