# Property predictions (CGCNN, MEGNet) and Pourbaix stability of the relaxed candidates.


def band_gap_args():
    """--predictor/--gap-*/--pbe-to-hse from screen.band_gap."""
    gap = config["screen"]["band_gap"]
    mapping = gap.get("pbe_to_hse")
    return (
        f"--predictor {gap['predictor']} --gap-level {gap['level']}"
        f" --gap-min {gap['min']} --gap-max {gap['max']}"
        + (f" --pbe-to-hse {mapping['slope']} {mapping['intercept']}" if mapping else "")
    )


rule properties:
    input:
        relaxed=relaxed(),
    output:
        table="results/screen/properties.csv",
    params:
        band_gap=band_gap_args(),
    log:
        "logs/properties.log",
    conda:
        "../envs/screen.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    shell:
        "python -m pipeline.stages.properties --relaxed {input.relaxed} {params.band_gap}"
        " --threads {threads} --out {output.table} > {log} 2>&1"


rule pourbaix:
    input:
        relaxed=relaxed(),
        references=hull_references(),
        experimental=workflow_path("resources/thermo/oxide_formation_free_energies.csv"),
    output:
        table="results/screen/pourbaix.csv",
        scheme="results/screen/pourbaix_scheme.json",
    params:
        v_rhe=config["screen"]["pourbaix"]["potential_v"],
        ph_range=" ".join(str(x) for x in config["screen"]["pourbaix"]["ph_range"]),
        ph_step=config["screen"]["pourbaix"]["ph_step"],
        concentration=config["screen"]["pourbaix"]["ion_concentration"],
        ion_source=config["screen"]["pourbaix"]["ion_source"],
    log:
        "logs/pourbaix.log",
    conda:
        "../envs/screen.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    shell:
        "python -m pipeline.stages.pourbaix --relaxed {input.relaxed} --references {input.references}"
        " --experimental {input.experimental} --ion-source {params.ion_source}"
        " --v-rhe {params.v_rhe} --ph-range {params.ph_range} --ph-step {params.ph_step}"
        " --ion-concentration {params.concentration} --out {output.table}"
        " --out-scheme {output.scheme} > {log} 2>&1"
