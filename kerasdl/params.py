"""How many weights and biases each layer has, with the formula that gives the count."""

import math

from keras import layers


def _dense(layer):
    inputs, units = layer.kernel.shape
    if layer.use_bias:
        return f"{inputs} inputs x {units} units + {units} biases", inputs * units + units
    return f"{inputs} inputs x {units} units", inputs * units


def _conv(layer):
    *kernel, channels_in, filters = layer.kernel.shape
    if isinstance(layer, layers.Conv2DTranspose):
        filters, channels_in = channels_in, filters  # its kernel is (h, w, out, in)
    window = " x ".join(map(str, kernel))
    weights = math.prod(kernel) * channels_in * filters
    text = f"{window} kernel x {channels_in} in-channels x {filters} filters"
    if layer.use_bias:
        return f"{text} + {filters} biases", weights + filters
    return text, weights


def _recurrent(layer):
    cell = layer.cell
    units = cell.units
    inputs = cell.kernel.shape[0]
    if isinstance(layer, layers.LSTM):
        return (f"4 gates x ({units} units x ({inputs} inputs + {units} units) + {units} biases)",
                4 * (units * (inputs + units) + units))
    if isinstance(layer, layers.GRU):
        biases = 2 * units if cell.reset_after else units
        return (f"3 gates x ({units} units x ({inputs} inputs + {units} units) + {biases} "
                f"biases{', reset_after' if cell.reset_after else ''})",
                3 * (units * (inputs + units) + biases))
    return (f"{units} units x ({inputs} inputs + {units} units) + {units} biases",
            units * (inputs + units) + units)


def _batch_norm(layer):
    channels = layer.gamma.shape[0] if layer.scale else layer.moving_mean.shape[0]
    parts = int(layer.scale) + int(layer.center) + 2
    return (f"{parts} x {channels} channels (gamma, beta trained; moving mean and variance "
            "not)", parts * channels)


def _embedding(layer):
    vocabulary, dimension = layer.embeddings.shape
    return f"{vocabulary} tokens x {dimension} dimensions", vocabulary * dimension


def _depthwise(layer):
    *kernel, channels, multiplier = layer.kernel.shape
    text = f"{' x '.join(map(str, kernel))} kernel x {channels} channels x {multiplier} per channel"
    count = math.prod(kernel) * channels * multiplier
    if layer.use_bias:
        return f"{text} + {channels * multiplier} biases", count + channels * multiplier
    return text, count


def formula(layer):
    """Returns `(formula, count)` for one layer's own weights (sub-layers excluded)."""
    if isinstance(layer, layers.Bidirectional):
        text, count = formula(layer.forward_layer)
        return f"2 directions x [{text}]", 2 * count
    if isinstance(layer, (layers.LSTM, layers.GRU, layers.SimpleRNN)):
        return _recurrent(layer)
    if isinstance(layer, layers.Dense) and getattr(layer, "kernel", None) is not None:
        return _dense(layer)
    if isinstance(layer, layers.DepthwiseConv2D):
        return _depthwise(layer)
    if isinstance(layer, (layers.Conv1D, layers.Conv2D, layers.Conv3D, layers.Conv2DTranspose)):
        return _conv(layer)
    if isinstance(layer, layers.BatchNormalization):
        return _batch_norm(layer)
    if isinstance(layer, layers.Embedding):
        return _embedding(layer)
    shapes = [tuple(weight.shape) for weight in layer.weights]
    if not shapes:
        return "no weights", 0
    return " + ".join(" x ".join(map(str, s)) or "1" for s in shapes), \
        sum(math.prod(s) for s in shapes)


def _children(layer):
    return [child for child in getattr(layer, "layers", [])
            if child is not layer and not isinstance(child, layers.InputLayer)]


def parameter_rows(model, prefix=""):
    """One row per layer with weights, sub-models walked: name, type, formula, count, Keras'."""
    rows = []
    for layer in _children(model):
        name = f"{prefix}{layer.name}"
        if _children(layer) and not isinstance(layer, layers.Bidirectional):
            rows.extend(parameter_rows(layer, prefix=f"{name}/"))
            continue
        text, count = formula(layer)
        if count or layer.weights:
            rows.append({"layer": name, "type": type(layer).__name__, "formula": text,
                         "count": count, "keras": layer.count_params()})
    return rows
