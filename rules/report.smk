# The screen's plots, registered for `snakemake --report`: the export's verdict, drawn (and the
# DFT check's, joined by id, when dft.check is on).


rule report:
    input:
        candidates=rules.export.output.candidates,
        criteria=rules.export.output.criteria,
        references=hull_references(),
        relaxed=relaxed(),
        training=rules.fetch_data.output.dataset,
        dft_check=dft_verdict,
    output:
        e_hull=report(
            "results/report/e_hull_histogram.png",
            category="4. Screen",
            caption="../report/e_hull_histogram.rst",
        ),
        ternary=report(
            "results/report/ternary_hull.png",
            category="4. Screen",
            caption="../report/ternary_hull.rst",
        ),
        gap_pourbaix=report(
            "results/report/band_gap_vs_pourbaix.png",
            category="4. Screen",
            caption="../report/band_gap_vs_pourbaix.rst",
        ),
        lattice=report(
            "results/report/lattice_parameters.png",
            category="5. Quality",
            caption="../report/lattice_parameters.rst",
        ),
        ml_vs_dft=(
            report(
                "results/report/ml_vs_dft.png",
                category="4. Screen",
                caption="../report/ml_vs_dft.rst",
            )
            if SETTINGS.dft.check
            else []
        ),
    log:
        "logs/report.log",
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=15,
    params:
        chemsys=SETTINGS.chemsys,
        oxygen=SCREEN.oxygen_reference,
        dft_check=dft_verdict_arg,
        out_dft=dft_plot_arg,
    shell:
        "python -m pipeline.stages.report --chemsys {params.chemsys}"
        " --candidates {input.candidates} --criteria {input.criteria}"
        " --oxygen-reference {params.oxygen}"
        " --references {input.references} --relaxed {input.relaxed}"
        " --training {input.training} --out-e-hull {output.e_hull}"
        " --out-ternary {output.ternary} --out-gap-pourbaix {output.gap_pourbaix}"
        " --out-lattice {output.lattice} {params.dft_check} {params.out_dft} > {log} 2>&1"
