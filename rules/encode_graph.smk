# The graph representation of the graph_diffusion model: periodic-graph nodes of the
# augmented crystals and their CGCNN band gaps (the teacher of its band-gap predictor).
# The screen environment: CGCNN is one of the screening property models.


rule encode_graph:
    input:
        dataset=rules.augment.output.dataset,
    output:
        graphs="results/encoded/graph.npz",
    log:
        "logs/encode_graph.log",
    conda:
        "../envs/screen.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        chemsys=config["chemsys"],
    shell:
        "python -m pipeline.stages.encode_graph --dataset {input.dataset} --chemsys {params.chemsys}"
        " --threads {threads} --out {output.graphs} > {log} 2>&1"
