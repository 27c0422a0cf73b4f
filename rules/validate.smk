# Every generator's samples checked alike: elements, distances, volume, duplicates within a
# generator, charge; each unique valid one looked up among the known structures.


rule validate:
    input:
        samples=sample_files(),
        known_index=rules.known_index.output.index,
    output:
        validated="results/screen/validated.json.gz",
        table="results/screen/validation.csv",
    log:
        "logs/screen/validate.log",
    conda:
        "../envs/screen.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        chemsys=SETTINGS.chemsys,
        limits=f"--min-distance {SCREEN.min_distance}"
        f" --min-volume-per-atom {SCREEN.min_volume_per_atom}"
        f" --max-volume-per-atom {SCREEN.max_volume_per_atom}",
    shell:
        "python -m pipeline.stages.validate --samples {input.samples}"
        " --known-index {input.known_index} --chemsys {params.chemsys} {params.limits}"
        " --out {output.validated} --out-table {output.table} > {log} 2>&1"
