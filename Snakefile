# crystal-htvs: generative inverse design of inorganic crystals.
#   snakemake --cores 8                      # the default pipeline on the bundled data
#   snakemake --cores 8 --configfile my.yaml # your own settings
# The rules only call the stage CLIs of the `pipeline` package; see README.md.

from snakemake.utils import min_version, validate

min_version("8.0")


configfile: "config.yaml"


validate(config, "schemas/config.schema.yaml")


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/augment.smk"
include: "rules/encode.smk"
include: "rules/screen.smk"


rule all:
    input:
        final_outputs(),
    default_target: True
