"""`kerasdl compare`: train variants of a recipe on the same data and seeds, side by side.

A variant is a set of hyperparameters (`--set`) and settings; each is trained once per
seed into `OUTPUT/runs/VARIANT-seedN/` (ordinary runs), then `comparison.csv` holds one
row per variant: its test metrics, the same metrics on its training examples (`train_*`)
and the gap between them (`gap_*`: how much worse on test, overfitting), as mean, standard
deviation, median, minimum and maximum over the seeds, wall time, and epochs run. Plots
overlay the variants' validation curves and, with `gradients`, their per-layer gradient
norms.
"""

import dataclasses
import itertools
import shutil
import json
import sys
import time
from pathlib import Path

import numpy as np

from kerasdl import hparams
from kerasdl import registry
from kerasdl import runs
from kerasdl import settings as settings_module
from kerasdl.errors import DataError
from kerasdl.errors import NonFiniteLoss
from kerasdl.errors import UsageError


def boolean(text):
    """Reads true or false (as `--set` does); anything else is a ValueError."""
    value = {"true": True, "false": False}.get(str(text).strip().lower())
    if value is None:
        raise ValueError(text)
    return value


# Settings a variant may change, with how to read a value given on the command line.
SETTINGS = {
    "batch_size": int, "epochs": int, "early_stopping": int, "train_examples": int,
    "balance": str, "keep_best": boolean,
}


@dataclasses.dataclass
class Variant:
    """One configuration: a label, hyperparameters to pin and settings to change."""

    label: str
    hyperparameters: dict = dataclasses.field(default_factory=dict)
    settings: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Preset:
    """A classic question, answered by comparing variants of a recipe."""

    question: str
    recipe: str
    variants: list
    data: str = None
    epochs: int = None
    pinned: dict = dataclasses.field(default_factory=dict)
    extra_settings: dict = dataclasses.field(default_factory=dict)
    gradients: bool = False
    measure: str = "accuracy"


def _hp(label, **values):
    return Variant(label, hyperparameters=values)


DEEP = {"hidden_layers": 8, "units": 32}
PRESETS = {
    "activations": Preset(
        "Which activation trains a deep network, and why do sigmoids vanish?",
        "perceptron", [_hp(name, activation=name)
                       for name in ("sigmoid", "tanh", "relu", "leaky_relu")],
        data="digits64", epochs=20, pinned={**DEEP, "optimizer": "sgd", "learning_rate": 0.05},
        gradients=True),
    "optimizers": Preset(
        "How do SGD, momentum, Nesterov, Adagrad, Adadelta, RMSprop and Adam compare?",
        "perceptron", [_hp(name, optimizer=name) for name in
                       ("sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam")],
        data="digits64", epochs=20,
        pinned={"hidden_layers": 2, "units": 64, "activation": "relu", "learning_rate": 0.01}),
    # A wide MLP memorises 100 noisy rows: the last epoch is kept (`keep_best` false), so
    # the baseline's train-test gap shows, and what each variant does to it. AdamW's decay
    # is decoupled from Adam's normalised steps, so it needs a large value to bite.
    "regularization": Preset(
        "What do weight decay (L2), dropout and early stopping do to overfitting?",
        "regression", [
            Variant("none"),
            _hp("weight_decay", weight_decay=10.0),
            _hp("dropout", dropout_rate=0.5),
            Variant("early_stopping", settings={"early_stopping": 20, "keep_best": True}),
        ],
        data="diabetes", epochs=100,
        pinned={"units": 256, "num_layers": 3, "linear_path": False, "weight_decay": 1e-6,
                "dropout_rate": 0.0, "learning_rate": 0.003},
        extra_settings={"keep_best": False, "early_stopping": None, "train_examples": 100},
        measure="mae"),
    "initializers": Preset(
        "Why not initialise weights to zero? Random normal, Glorot and He compared.",
        "perceptron", [_hp(name, initializer=name) for name in
                       ("zeros", "random_normal", "glorot_uniform", "he_normal")],
        data="digits64", epochs=20,
        pinned={"hidden_layers": 4, "units": 64, "activation": "relu", "learning_rate": 0.01},
        gradients=True),
    "batch_size": Preset(
        "What does the batch size change, at a fixed number of epochs?",
        "perceptron", [Variant(str(size), settings={"batch_size": size})
                       for size in (8, 32, 128, 512)],
        data="digits64", epochs=20,
        pinned={"hidden_layers": 2, "units": 64, "activation": "relu", "learning_rate": 0.003}),
    "learning_rate": Preset(
        "What happens when the learning rate is too small or too large?",
        "perceptron", [_hp(str(rate), learning_rate=rate)
                       for rate in (0.0001, 0.001, 0.01, 0.1, 1.0)],
        data="digits64", epochs=20,
        pinned={"hidden_layers": 2, "units": 64, "activation": "relu", "optimizer": "sgd"}),
    "loss": Preset(
        "Do categorical and sparse categorical cross-entropy give the same result?",
        "perceptron", [_hp(name, loss=name) for name in
                       ("sparse_categorical_crossentropy", "categorical_crossentropy")],
        data="digits64", epochs=20,
        pinned={"hidden_layers": 2, "units": 64, "activation": "relu", "learning_rate": 0.003}),
    "imbalance": Preset(
        "How to train on imbalanced classes: class weights or oversampling?",
        "perceptron", [Variant(name, settings={"balance": name})
                       for name in ("none", "class_weight", "oversample")],
        data="imbalanced", epochs=30,
        pinned={"hidden_layers": 2, "units": 32, "activation": "relu", "learning_rate": 0.003},
        measure="recall"),
}


def parse_vary(assignments, recipe_name):
    """Turns `NAME=V1,V2,...` strings into the variants of their cartesian product.

    NAME is a hyperparameter of the recipe's search space or one of `SETTINGS`.

    Raises:
        UsageError: for a malformed assignment or an unknown name (listing valid ones).
    """
    space = {row["name"] for row in registry.recipe_info(recipe_name)["search_space"]}
    axes, names = [], []
    for assignment in assignments:
        name, sep, values = str(assignment).partition("=")
        name = name.strip()
        values = [value.strip() for value in values.split(",") if value.strip()]
        if not sep or not name or not values:
            raise UsageError("`--vary` takes NAME=V1,V2,..., for example "
                             f"`--vary learning_rate=0.001,0.01`. Received: {assignment!r}")
        if name not in space and name not in SETTINGS:
            raise UsageError(
                f"Unknown name in `--vary`: {name!r}. Valid: the hyperparameters "
                f"{', '.join(sorted(space))}; the settings {', '.join(SETTINGS)}")
        if name in names:  # the later values would silently replace the earlier ones
            raise UsageError(f"`--vary` names {name!r} twice; give all its values once: "
                             f"--vary {name}=V1,V2,... Received: {assignment!r}")
        if len(set(values)) < len(values):  # two variants of one label, one run folder
            raise UsageError(f"`--vary {name}` repeats a value; give each value once. "
                             f"Received: {assignment!r}")
        names.append(name)
        axes.append([(name, value) for value in values])
    variants = []
    for combination in itertools.product(*axes):
        variant = Variant(",".join(f"{name}={value}" for name, value in combination))
        for name, value in combination:
            if name in SETTINGS:
                try:
                    variant.settings[name] = SETTINGS[name](value)
                except ValueError:
                    raise UsageError(f"`{name}` takes {SETTINGS[name].__name__} values. "
                                     f"Received: {name}={value}") from None
            else:
                variant.hyperparameters[name] = value
        variants.append(variant)
    return variants


def plan(recipe_name=None, vary=(), preset=None):
    """What `kerasdl compare` compares: a `--preset`'s, or `--vary`'s variants of a recipe.

    Args:
        recipe_name: the recipe (a name or a .py file); with a preset, its own or None.
        vary: `NAME=V1,V2,...` strings (see `parse_vary`).
        preset: a name of `PRESETS`.

    Returns:
        `(recipe_name, defaults, variants, gradients)`: the recipe, its `DEFAULTS` as the
        preset changes them, the variants, and whether the preset records gradient norms.

    Raises:
        UsageError: for a recipe other than the preset's, both `vary` and a preset, or
            neither.
    """
    chosen = PRESETS[preset] if preset else None
    if chosen is not None:
        if recipe_name and recipe_name != chosen.recipe:
            raise UsageError(f"Preset {preset!r} compares the {chosen.recipe} recipe; "
                             f"received {recipe_name!r}.")
        if vary:
            raise UsageError("`--preset` brings its own variants; give --vary or --preset.")
        recipe_name = chosen.recipe
    if not recipe_name:
        raise UsageError("Give a RECIPE and --vary NAME=V1,V2,..., or --preset NAME.")
    defaults = registry.contract_info(recipe_name)["defaults"]
    if chosen is not None:
        defaults = {**defaults, "data": chosen.data or defaults.get("data"),
                    "epochs": chosen.epochs or defaults.get("epochs"),
                    **chosen.extra_settings, "set": dict(chosen.pinned)}
        return recipe_name, defaults, chosen.variants, chosen.gradients
    if not vary:
        raise UsageError("`compare` needs --vary NAME=V1,V2,... or --preset NAME.")
    return recipe_name, defaults, parse_vary(vary, recipe_name), False


def _safe_label(label):
    return "".join(c if c.isalnum() or c in "-_.=" else "_" for c in label)


def compare(recipe_name, base_settings, variants, seeds=1, gradients=False, output=None,
            command=None):
    """Trains every variant once per seed and writes comparison.csv and the plots.

    Args:
        base_settings: resolved settings every variant starts from.
        variants: list of `Variant`.
        seeds: number of seeds, from `base_settings["seed"]` on.

    Returns:
        `(output_dir, frame)`: the comparison folder and the comparison table.
    """
    output = Path(output or Path("comparisons") / f"{registry.recipe_name(recipe_name)}-"
                  f"{time.strftime('%Y%m%d-%H%M%S')}")
    runs.check_output(output)
    created = not output.exists()
    output.mkdir(parents=True, exist_ok=True)
    try:
        return _compare(recipe_name, base_settings, variants, seeds, gradients, output, command)
    except (UsageError, DataError):
        # A bad value of a variant: nothing was trained, so nothing is left behind.
        if created and not any(output.glob("runs/*/model.keras")):
            shutil.rmtree(output, ignore_errors=True)
        raise


def _compare(recipe_name, base_settings, variants, seeds, gradients, output, command):
    import pandas as pd

    from kerasdl import plots
    from kerasdl import training

    _check_variants(recipe_name, base_settings, variants)
    rows, curves, gradient_frames = [], {}, {}
    for variant in variants:
        per_seed = []
        for offset in range(seeds):
            seed = base_settings["seed"] + offset
            run_settings = {**base_settings, **variant.settings, "seed": seed,
                            "set": {**base_settings.get("set", {}), **variant.hyperparameters},
                            "gradients": gradients,
                            "output": str(output / "runs" / f"{_safe_label(variant.label)}-seed{seed}")}
            settings_module.check(run_settings)
            print(f"[compare] {variant.label}, seed {seed}", file=sys.stderr)
            start = time.perf_counter()
            try:
                run_dir = training.train(recipe_name, run_settings, command=command)
            except NonFiniteLoss as error:  # a diverging variant is a result too
                print(f"[compare] {variant.label}, seed {seed}: {error}", file=sys.stderr)
                per_seed.append({"diverged": True, "seconds": time.perf_counter() - start})
                continue
            metrics = json.loads((run_dir / "metrics.json").read_text())
            history = pd.read_csv(run_dir / "history.csv")
            record = {f"test_{name}": value for name, value in metrics["test"].items()}
            # The same metrics on the examples it learnt from: the gap shows overfitting.
            for name, value in _train_scores(recipe_name, run_dir, run_settings).items():
                record[f"train_{name}"] = value
                if f"test_{name}" in record:
                    record[f"gap_{name}"] = _gap(name, value, record[f"test_{name}"])
            for name, value in (metrics.get("per_class_recall") or {}).items():
                record[f"recall_{name}"] = value
            record.update(seconds=time.perf_counter() - start, epochs_run=len(history),
                          diverged=False)
            per_seed.append(record)
            curves.setdefault(variant.label, []).append(history)
            if gradients and (run_dir / "gradients.csv").exists():
                gradient_frames.setdefault(variant.label, []).append(
                    pd.read_csv(run_dir / "gradients.csv"))
        rows.append(_summarise(variant, per_seed))
    frame = pd.DataFrame(rows)
    runs.atomic_write(output / "comparison.csv", lambda tmp: frame.to_csv(tmp, index=False))
    runs.write_json(output / "comparison.json", {
        "recipe": recipe_name, "seeds": seeds, "gradients": gradients,
        "settings": {k: v for k, v in base_settings.items() if k != "output"},
        "variants": [dataclasses.asdict(variant) for variant in variants]})
    plots.compare_curves({label: _mean_history(h) for label, h in curves.items()},
                         output / "learning_curves.png")
    if gradient_frames:
        plots.compare_gradients({label: pd.concat(f).groupby(["epoch", "depth"], as_index=False)
                                 ["norm"].mean() for label, f in gradient_frames.items()},
                                output / "gradient_norms.png")
    return output, frame


def _gap(name, train, test):
    """How much worse a metric is on the test split than on the training examples."""
    higher_is_better = any(word in name for word in ("acc", "auc", "recall", "precision"))
    return train - test if higher_is_better else test - train


def _train_scores(recipe_name, run_dir, run_settings):
    """A run's final model scored on its own training examples, in inference mode.

    Inference mode (no dropout, no input noise), unlike the `accuracy` column of
    history.csv, so a regularised model's fit of its training data is not understated.
    The training split is loaded as the run loaded it (`train_examples` included).
    """
    from kerasdl.data import load_data
    from kerasdl.scoring import evaluate_metrics
    from kerasdl.session import fixed_hp

    recipe = registry.load_recipe(recipe_name)
    config = json.loads((run_dir / "config.json").read_text())
    splits = load_data(run_settings["data"], recipe.TASK, run_settings)
    batches = recipe.make_pipeline(splits.train, splits.spec, fixed_hp(config.get("hyperparameters")), training=False,
                                   batch_size=run_settings["batch_size"])
    return evaluate_metrics(runs.load_model(run_dir / "model.keras"), batches)


def _check_variants(recipe_name, base_settings, variants):
    """Checks every variant's settings and hyperparameters before anything trains.

    Raises:
        UsageError: naming the bad value, as `kerasdl train` would.
    """
    from kerasdl.data import load_data
    from kerasdl.session import model_spec
    from kerasdl.session import search_space

    for variant in variants:
        settings_module.check({**base_settings, **variant.settings})
    recipe = registry.load_recipe(recipe_name)
    splits = load_data(base_settings["data"], recipe.TASK, base_settings)
    space = search_space(recipe, model_spec(splits, base_settings, recipe), splits.train, 8)
    for variant in variants:
        hparams.pinned({**base_settings.get("set", {}), **variant.hyperparameters}, space)


def _summarise(variant, per_seed):
    row = {"variant": variant.label, **{f"set_{k}": v for k, v in variant.hyperparameters.items()},
           **variant.settings, "seeds": len(per_seed),
           "diverged": sum(1 for record in per_seed if record.get("diverged"))}
    finished = [record for record in per_seed if not record.get("diverged")]
    names = sorted({name for record in finished for name in record
                    if name not in ("seconds", "diverged")})
    for name in names:
        values = np.array([record[name] for record in finished if record.get(name) is not None],
                          dtype=float)
        if len(values):
            row[f"{name}_mean"] = float(values.mean())
            row[f"{name}_std"] = float(values.std())
            # The median and the range: what a figure quoted from N seeds reads.
            row[f"{name}_median"] = float(np.median(values))
            row[f"{name}_min"] = float(values.min())
            row[f"{name}_max"] = float(values.max())
    seconds = np.array([record["seconds"] for record in per_seed], dtype=float)
    row["seconds_mean"] = float(seconds.mean())
    row["seconds_median"] = float(np.median(seconds))
    return row


def _mean_history(histories):
    import pandas as pd

    numeric = [history.drop(columns=["epoch"], errors="ignore") for history in histories]
    return pd.concat(numeric).groupby(level=0).mean()


def describe(frame):
    """A short table of the comparison for the terminal: variant, main metrics, time."""
    columns = []
    for column in frame.columns:
        if column.startswith("test_") and column.endswith("_mean"):
            # Train next to test: the gap between them is overfitting.
            columns += [c for c in (column.replace("test_", "train_", 1), column)
                        if c in frame.columns]
    columns += [c for c in frame.columns if c.startswith("recall_") and c.endswith("_mean")]
    rows = []
    for _, row in frame.iterrows():
        values = [f"{row[c]:.4f} ± {row[c.replace('_mean', '_std')]:.4f}"
                  if c in row and not np.isnan(row[c]) else "-" for c in columns]
        rows.append([row["variant"], *values, f"{row['seconds_mean']:.1f}s",
                     str(int(row["diverged"])) if row["diverged"] else "-"])
    headers = ["VARIANT", *[c[:-5] for c in columns], "TIME", "DIVERGED"]
    return rows, headers

