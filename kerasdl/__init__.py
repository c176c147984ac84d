"""kerasdl: Keras 3 deep-learning recipes with a command line.

The public API, re-exported flatly. Names are loaded on first use, so importing
kerasdl (and running `kerasdl --help`, `list`, `show`, `copy`) imports no TensorFlow.
"""

import importlib

_EXPORTS = {
    "KerasdlError": "kerasdl.errors",
    "DataError": "kerasdl.errors",
    "RecipeError": "kerasdl.errors",
    "RunError": "kerasdl.errors",
    "UsageError": "kerasdl.errors",
    "list_recipes": "kerasdl.registry",
    "load_recipe": "kerasdl.registry",
    "recipe_info": "kerasdl.registry",
    "load_data": "kerasdl.data",
    "frame_to_inputs": "kerasdl.data",
    "train": "kerasdl.training",
    "evaluate": "kerasdl.evaluation",
    "predict": "kerasdl.evaluation",
    "load_run": "kerasdl.evaluation",
    "generate": "kerasdl.evaluation",
    "tune": "kerasdl.tuning",
    "export": "kerasdl.export",
    "open_artifact": "kerasdl.artifacts",
    "evaluate_artifact": "kerasdl.artifacts",
    "serve": "kerasdl.serve",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'kerasdl' has no attribute {name!r}")
