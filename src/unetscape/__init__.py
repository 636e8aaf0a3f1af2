"""unetscape: U-Net skin-lesion segmentation and its Dice loss landscapes.

The package is layered; a module imports only from its own layer and the layers below it:

    basics (atomic, device, run_ids, seeding)
      <- models, data
      <- training
      <- landscape
      <- measures
      <- analysis
      <- plots
      <- jobs (what each rule's script calls)
      <- scripts/

`workflow/` is the plumbing the rules, scripts and jobs use (config, code inputs, rule entry,
cluster resources); it may import the basics, models and data.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("unetscape")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"
