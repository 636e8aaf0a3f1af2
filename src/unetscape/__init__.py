"""unetscape: U-Net skin-lesion segmentation and its Dice loss landscapes."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("unetscape")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"
