# Pourbaix stability (Delta G_pbx) of the relaxed candidates.


rule pourbaix:
    input:
        relaxed=relaxed(),
        references=hull_references(),
        experimental=workflow_path("resources/thermo/oxide_formation_free_energies.csv"),
    output:
        table="results/screen/pourbaix.csv",
        scheme="results/screen/pourbaix_scheme.json",
    log:
        "logs/pourbaix.log",
    conda:
        "../envs/screen.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        v_rhe=SCREEN.pourbaix.potential_v,
        ph_range=" ".join(str(x) for x in SCREEN.pourbaix.ph_range),
        ph_step=SCREEN.pourbaix.ph_step,
        concentration=SCREEN.pourbaix.ion_concentration,
        ion_source=SCREEN.pourbaix.ion_source,
    shell:
        "python -m pipeline.stages.pourbaix --relaxed {input.relaxed} --references {input.references}"
        " --experimental {input.experimental} --ion-source {params.ion_source}"
        " --v-rhe {params.v_rhe} --ph-range {params.ph_range} --ph-step {params.ph_step}"
        " --ion-concentration {params.concentration} --out {output.table}"
        " --out-scheme {output.scheme} > {log} 2>&1"
