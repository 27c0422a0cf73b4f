# Property predictions (CGCNN, MEGNet) of the relaxed candidates: the band gap at the level of
# the screen's band-gap window.


def band_gap_args():
    """--predictor/--gap-level/--pbe-to-hse from screen.band_gap."""
    gap = SCREEN.band_gap
    mapping = gap.pbe_to_hse
    return f"--predictor {gap.predictor} --gap-level {gap.level}" + (
        f" --pbe-to-hse {mapping.slope} {mapping.intercept}" if mapping else ""
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
