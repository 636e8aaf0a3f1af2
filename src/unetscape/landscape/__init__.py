"""Loss landscapes of trained models (Li et al. 2018, "Visualizing the Loss Landscape of
Neural Nets"): normalised directions, surfaces on a grid, 1-D interpolation, PCA of the
training path, and the batch-norm scale symmetry."""

from .directions import (
    IGNORES,
    NORMS,
    check_directions_fit,
    directions_settings,
    inner_product,
    load_directions,
    make_directions,
    normalize_direction,
    parameter_names,
    random_direction,
    save_directions,
)
from .grid import SurfaceGrid
from .interpolation import interpolate_states, interpolation_curve
from .rescale import conv_bn_pairs, rescale_bn_inputs
from .surface import BN_MODES, EVAL_NOISE, SurfaceEvaluator, evaluation_set
from .surface_io import merge_chunks, read_attrs, read_chunk, read_surface, write_attrs, write_chunk
from .trajectory import pca_plane, plane_extent

__all__ = [
    "BN_MODES",
    "EVAL_NOISE",
    "IGNORES",
    "NORMS",
    "SurfaceEvaluator",
    "SurfaceGrid",
    "check_directions_fit",
    "conv_bn_pairs",
    "directions_settings",
    "evaluation_set",
    "inner_product",
    "interpolate_states",
    "interpolation_curve",
    "load_directions",
    "make_directions",
    "merge_chunks",
    "normalize_direction",
    "parameter_names",
    "pca_plane",
    "plane_extent",
    "random_direction",
    "read_attrs",
    "read_chunk",
    "read_surface",
    "rescale_bn_inputs",
    "save_directions",
    "write_attrs",
    "write_chunk",
]
