"""`kerasdl compare --vary NAME=V1,V2`: parsed into the variants of their product."""

import pytest

from kerasdl import compare
from kerasdl import registry
from kerasdl.errors import UsageError


@pytest.mark.parametrize("text,value", [("true", True), (" False ", False), ("TRUE", True)])
def test_boolean_reads_true_and_false(text, value):
    assert compare.boolean(text) is value


@pytest.mark.parametrize("text", ["yes", "1", "", "maybe"])
def test_boolean_refuses_anything_else(text):
    with pytest.raises(ValueError):
        compare.boolean(text)


def test_parse_vary_makes_the_cartesian_product():
    name = registry.recipe_info("perceptron")["search_space"][0]["name"]
    variants = compare.parse_vary([f"{name}=a,b", "batch_size=16, 32", "keep_best=false"],
                                  "perceptron")
    assert [variant.label for variant in variants] == [
        f"{name}=a,batch_size=16,keep_best=false", f"{name}=a,batch_size=32,keep_best=false",
        f"{name}=b,batch_size=16,keep_best=false", f"{name}=b,batch_size=32,keep_best=false"]
    assert variants[1].hyperparameters == {name: "a"}
    assert variants[1].settings == {"batch_size": 32, "keep_best": False}


@pytest.mark.parametrize("bad,fragment", [
    ("batch_size", "`--vary` takes NAME=V1,V2"), ("=1,2", "`--vary` takes NAME=V1,V2"),
    ("batch_size=", "`--vary` takes NAME=V1,V2"), ("batch_size= , ", "NAME=V1,V2"),
    ("units_typo=1,2", "Unknown name in `--vary`: 'units_typo'. Valid: the hyperparameters"),
    ("batch_size=16,big", "`batch_size` takes int values. Received: batch_size=big"),
    ("keep_best=yes", "`keep_best` takes boolean values. Received: keep_best=yes"),
])
def test_parse_vary_refuses(bad, fragment):
    with pytest.raises(UsageError) as error:
        compare.parse_vary([bad], "perceptron")
    assert fragment in str(error.value), str(error.value)


@pytest.mark.parametrize("vary,fragment", [
    (["batch_size=16,32", "batch_size=64"], "`--vary` names 'batch_size' twice"),
    (["batch_size=16,16"], "`--vary batch_size` repeats a value"),
])
def test_parse_vary_refuses_values_that_would_be_lost(vary, fragment):
    """A name given twice used to train every variant with its last value only."""
    with pytest.raises(UsageError) as error:
        compare.parse_vary(vary, "perceptron")
    assert fragment in str(error.value)


def test_summary_gives_each_metric_its_median_and_range_over_the_seeds():
    # Three seeds that disagree, one diverged: the figures come from the finished two...
    per_seed = [{"test_accuracy": 0.9, "seconds": 3.0, "diverged": False},
                {"diverged": True, "seconds": 1.0},
                {"test_accuracy": 0.5, "seconds": 5.0, "diverged": False}]
    row = compare._summarise(compare.Variant("units=8", {"units": 8}), per_seed)
    assert row["seeds"] == 3 and row["diverged"] == 1
    assert row["test_accuracy_median"] == pytest.approx(0.7)
    assert (row["test_accuracy_min"], row["test_accuracy_max"]) == (0.5, 0.9)
    # ...and an odd count's median is the middle seed, not the mean (pulled by an outlier).
    row = compare._summarise(compare.Variant("a"), [
        {"test_accuracy": value, "seconds": seconds, "diverged": False}
        for value, seconds in ((0.95, 2.0), (0.1, 9.0), (0.93, 4.0))])
    assert row["test_accuracy_median"] == 0.93
    assert row["test_accuracy_mean"] == pytest.approx((0.95 + 0.1 + 0.93) / 3)
    assert (row["test_accuracy_min"], row["test_accuracy_max"]) == (0.1, 0.95)
    assert row["seconds_median"] == 4.0
