# The condition of property-conditioned models (cvae): CGCNN predictions for the training
# structures, attached to their point clouds.


rule training_properties:
    input:
        dataset=rules.augment.output.dataset,
        encoded=rules.encode.output.tensors,
    output:
        table="results/properties/training.csv",
        labelled="results/encoded/pointcloud_properties.npz",
        plot=report(
            "results/properties/training_properties.png",
            category="2. Generative models",
            subcategory="cvae",
            caption="../report/training_properties.rst",
        ),
    log:
        "logs/training_properties.log",
    conda:
        "../envs/screen.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    shell:
        "python -m pipeline.stages.training_properties --dataset {input.dataset}"
        " --encoded {input.encoded} --threads {threads} --out {output.table}"
        " --out-labelled {output.labelled} --out-plot {output.plot} > {log} 2>&1"
