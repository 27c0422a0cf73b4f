# crystal-htvs: generative inverse design of inorganic crystals.
#   snakemake --cores 8                      # the default pipeline on the bundled data
#   snakemake --cores 8 --configfile my.yaml # your own settings
# The rules only call the stage CLIs of the `pipeline` package; see README.md.

import os
import sys

from snakemake.utils import min_version, validate

sys.path.insert(0, workflow.basedir)
from pipeline.screen.criteria import Criteria
from pipeline.settings import Settings
from pipeline.settings.schema import (
    check_config,
    load_schema,
    parse_command_line_scalars,
    restrict_to_system,
)

min_version("8.0")


# Found next to this Snakefile also when run with `-d <workdir>` (a path here is
# relative to the working directory).
configfile: os.path.join(workflow.basedir, "config.yaml")


# A readable list of every problem first (key.path: message), then snakemake's own
# validation, which also fills in the schema's defaults.
# (Scalars of a mapping given with --config reach it as text: read them as YAML first.)
parse_command_line_scalars(config, load_schema(workflow.source_path("schemas/config.schema.yaml")))
check_config(config, workflow.source_path("schemas/config.schema.yaml"))
validate(config, "schemas/config.schema.yaml")
# Element-keyed settings of other elements (the defaults' Mg, Mn after an overlay that
# changes chemsys) are dropped; missing caps and oxidation states come from the data and
# from pymatgen in the stages, which say so in their logs.
for note in restrict_to_system(config):
    print(f"note: {note}", file=sys.stderr)
# The one typed object of every setting the rules read.
SETTINGS = Settings.from_mapping(config)


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/augment.smk"
include: "rules/encode.smk"
include: "rules/encode_graph.smk"
include: "rules/encode_crystens.smk"
include: "rules/encode_wyckoff.smk"
include: "rules/compositions.smk"
include: "rules/training_properties.smk"
include: "rules/train.smk"
include: "rules/sample.smk"
include: "rules/hull_references.smk"
include: "rules/known_index.smk"
include: "rules/validate.smk"
include: "rules/prescreen.smk"
include: "rules/relax.smk"
include: "rules/second_opinion.smk"
include: "rules/ehull.smk"
include: "rules/properties.smk"
include: "rules/pourbaix.smk"
include: "rules/export.smk"
include: "rules/report.smk"
include: "rules/evaluate.smk"
include: "rules/explorer.smk"
include: "rules/environment.smk"
include: "rules/dft_check.smk"
include: "rules/discovery_common.smk"
include: "rules/discovery.smk"


rule all:
    default_target: True
    input:
        final_outputs(),
        dft_check_outputs(),
        discovery_outputs(),
