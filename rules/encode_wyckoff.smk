# The Wyckoff representation of the wyckoff_diffusion model: each training structure's
# space group, conventional lattice and Wyckoff orbits (built only when the model is trained).


rule encode_wyckoff:
    input:
        dataset=rules.fetch_data.output.dataset,
    output:
        crystals="results/encoded/wyckoff.npz",
    log:
        "logs/encode_wyckoff.log",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        chemsys=config["chemsys"],
        symprec=config["encoding"]["wyckoff_symprec"],
    shell:
        "python -m pipeline.stages.encode_wyckoff --dataset {input.dataset}"
        " --chemsys {params.chemsys} --symprec {params.symprec} --out {output.crystals} > {log} 2>&1"
