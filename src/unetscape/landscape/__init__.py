"""Loss landscapes of trained models (Li et al. 2018, "Visualizing the Loss Landscape of
Neural Nets"): normalised directions, surfaces on a grid, 1-D interpolation, PCA of the
training path, and the batch-norm scale symmetry.

May import training, models, data and the basics."""

# Names resolve lazily (PEP 562): a job that only reads surface files does not pay for
# importing torch.
import importlib

_SOURCES = {
    "BN_MODES": "surface",
    "EVAL_NOISE": "surface",
    "IGNORES": "directions",
    "NORMS": "directions",
    "SurfaceEvaluator": "surface",
    "SurfaceGrid": "grid",
    "check_directions_fit": "directions",
    "conv_bn_pairs": "rescale",
    "directions_settings": "directions",
    "evaluation_set": "surface",
    "fit_pca_plane": "trajectory",
    "inner_product": "directions",
    "interpolate_states": "interpolation",
    "interpolation_curve": "interpolation",
    "load_directions": "directions",
    "make_directions": "directions",
    "merge_chunks": "surface_io",
    "normalize_direction": "directions",
    "parameter_names": "directions",
    "pca_plane": "trajectory",
    "plane_extent": "trajectory",
    "random_direction": "directions",
    "read_attrs": "surface_io",
    "read_chunk": "surface_io",
    "read_surface": "surface_io",
    "rescale_bn_inputs": "rescale",
    "save_directions": "directions",
    "surface_array": "surface_io",
    "write_attrs": "surface_io",
    "write_chunk": "surface_io",
}


def __getattr__(name: str):
    if name in _SOURCES:
        return getattr(importlib.import_module(f".{_SOURCES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    "fit_pca_plane",
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
    "surface_array",
    "write_attrs",
    "write_chunk",
]
