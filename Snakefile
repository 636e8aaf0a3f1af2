# unetscape: U-Net skin-lesion segmentation and its Dice loss landscapes.
# See README.md for usage; config/config.yaml for the default studies.

from snakemake.utils import min_version

min_version("9.0")


include: "rules/config_files.smk"


# A config file given with --configfile replaces the default instead of being merged into
# it, so every config file describes its whole run grid (a merge could not remove a study).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "report/workflow.rst"


scattergather:
    surface=config["landscape"]["plane"]["chunks"],


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/landscape.smk"
include: "rules/analysis.smk"
include: "rules/figures.smk"
include: "rules/external.smk"


rule all:
    default_target: True
    input:
        get_final_outputs(),
