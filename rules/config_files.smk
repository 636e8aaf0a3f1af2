# Read every config file strictly before Snakemake's own reader takes the default one: that
# reader lets a duplicated key win silently and names no file or line in a syntax error.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from unetscape.workflow.strict_yaml import YamlError, load_yaml_file

# --configfile files are already read (a syntax error in one stops Snakemake before this
# file; `python -m unetscape.workflow.config_checks FILE` names its line); the default is read next.
for path in workflow.overwrite_configfiles or ["config/config.yaml"]:
    try:
        load_yaml_file(path)
    except YamlError as err:
        raise WorkflowError(f"config file {err}") from None
