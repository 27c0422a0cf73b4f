# Energy above the hull of every relaxed candidate, with the main potential and, where
# configured, the second opinion's and the consensus potentials'. Energies only: the verdict
# is the export's.


rule ehull:
    input:
        unpack(ehull_inputs),
    output:
        table="results/screen/hull.csv",
        phases="results/screen/hull_phases.csv",
    log:
        "logs/screen/ehull.log",
    conda:
        "../envs/screen.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        others=other_potentials_args,
        oxygen=SCREEN.oxygen_reference,
    shell:
        "python -m pipeline.stages.ehull --relaxed {input.relaxed}"
        " --references-relaxed {input.references} --mp-entries {input.mp_entries}"
        " --repeat {input.repeats}"
        " {params.others} --oxygen-reference {params.oxygen} --out {output.table} --out-phases {output.phases} > {log} 2>&1"
