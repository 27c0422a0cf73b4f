# Property predictions (CGCNN, MEGNet) of the relaxed candidates: the band gap at the level of
# the screen's band-gap window.


rule properties:
    input:
        relaxed=relaxed(),
    output:
        table="results/screen/properties.csv",
    log:
        "logs/properties.log",
    conda:
        "../envs/screen.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        band_gap=band_gap_args(),
    shell:
        "python -m pipeline.stages.properties --relaxed {input.relaxed} {params.band_gap}"
        " --threads {threads} --out {output.table} > {log} 2>&1"
