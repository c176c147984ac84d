"""kerasdl's recipes: one standalone Keras model family per module.

Each module keeps the recipe contract (see DESIGN.md) and imports only keras,
tensorflow, keras_tuner, numpy and the standard library, so it can be copied
into any project (`kerasdl copy NAME DEST`).
"""
