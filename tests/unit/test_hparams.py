"""`--set NAME=VALUE`: parsing, checking against a search space, pinning."""

import keras_tuner
import pytest

from kerasdl import hparams
from kerasdl.errors import UsageError


def test_parse_assignments_good():
    assert hparams.parse_assignments([" units = 8", "rate=0.01", "name=a=b", "empty="]) == {
        "units": "8", "rate": "0.01", "name": "a=b", "empty": ""}
    assert hparams.parse_assignments([]) == {}


@pytest.mark.parametrize("bad", ["units", "=8", "  =8", ""])
def test_parse_assignments_malformed(bad):
    with pytest.raises(UsageError) as error:
        hparams.parse_assignments(["ok=1", bad])
    assert "NAME=VALUE" in str(error.value) and repr(bad) in str(error.value)


def _space():
    hp = keras_tuner.HyperParameters()
    hp.Int("units", 4, 64, step=4, default=8)
    hp.Float("learning_rate", 1e-4, 1e-1, sampling="log")
    hp.Choice("activation", ["relu", "tanh"])
    hp.Choice("width", [16, 32])
    hp.Boolean("batch_norm")
    hp.Fixed("head_epochs", 2)
    return hp


def _param(name):
    return next(param for param in _space().space if param.name == name)


@pytest.mark.parametrize("name,raw,expected", [
    ("units", "16", 16), ("units", 64, 64), ("units", 8.0, 8), ("learning_rate", "0.01", 0.01),
    ("activation", "tanh", "tanh"), ("width", "32", 32), ("width", "32.0", 32),
    ("batch_norm", "yes", True), ("batch_norm", "off", False), ("batch_norm", True, True),
    ("head_epochs", "2", 2),
])
def test_check_value_converts_to_the_type(name, raw, expected):
    value = hparams.check_value(_param(name), raw)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("name,raw,domain", [
    ("units", "65", "an integer in [4, 64]"), ("units", "8.5", "an integer in [4, 64]"),
    ("units", True, "an integer in [4, 64]"), ("units", "many", "an integer in [4, 64]"),
    ("learning_rate", "1", "a number in [0.0001, 0.1]"),
    ("activation", "gelu", "one of relu, tanh"), ("width", "24", "one of 16, 32"),
    ("batch_norm", "maybe", "true or false"), ("head_epochs", "3", "2 (fixed)"),
])
def test_check_value_names_the_domain_and_the_value(name, raw, domain):
    with pytest.raises(UsageError) as error:
        hparams.check_value(_param(name), raw)
    assert f"`{name}` must be {domain}. Received: {name}={raw}" == str(error.value)


def test_pinned_fixes_the_overrides_only():
    hp = hparams.pinned({"units": "32", "activation": "tanh"}, _space())
    assert hp.values == {"units": 32, "activation": "tanh"}
    assert all(type(param).__name__ == "Fixed" for param in hp.space)
    # A model built with it uses the pinned values and the defaults of the rest.
    assert hp.Int("units", 4, 64) == 32 and hp.Boolean("batch_norm") is False


def test_pinned_unknown_name_lists_the_valid_ones():
    with pytest.raises(UsageError) as error:
        hparams.pinned({"unit": "8"}, _space())
    assert "'unit'" in str(error.value)
    assert "activation, batch_norm, head_epochs, learning_rate, units, width" in str(error.value)


def test_check_overrides_against_a_declared_search_space():
    space = hparams.describe(_space())
    hparams.check_overrides({"units": "12", "activation": "relu", "head_epochs": "7"}, space)
    with pytest.raises(UsageError, match=r"`units` must be an integer in \[4, 64\]"):
        hparams.check_overrides({"units": "100"}, space)
    with pytest.raises(UsageError, match="`activation` must be one of relu, tanh"):
        hparams.check_overrides({"activation": "elu"}, space)
    with pytest.raises(UsageError, match="Unknown hyperparameter: 'dropout'. Valid names: "
                                         "activation, batch_norm"):
        hparams.check_overrides({"dropout": "0.1"}, space)
    # Choices the source does not spell out are left to the built model.
    hparams.check_overrides({"base": "anything"},
                            [{"name": "base", "type": "Choice", "values": "list(BASES)"}])


def test_describe_lists_each_hyperparameter():
    rows = {row["name"]: row for row in hparams.describe(_space())}
    assert rows["units"]["min_value"] == 4 and rows["units"]["step"] == 4
    assert rows["units"]["default"] == 8
    assert rows["activation"]["values"] == ["relu", "tanh"]
    assert rows["head_epochs"]["value"] == 2
