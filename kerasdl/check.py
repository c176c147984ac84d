"""Checks that a recipe keeps the recipe contract, the way a user can run it on their own.

Like scikit-learn's `check_estimator`: `check_recipe("cnn")` or
`check_recipe("./house_prices.py")` reads the recipe's declarations, builds its default
model on its default data, runs a few training steps through its own pipeline (and its
own `fit`), saves and reloads the model, compares the search space `kerasdl show` reads
from the source with the real one, and calls each hook it declares. Every broken rule
is one violation naming the rule and what is wrong (recipes/README.md lists the rules;
installed, `registry.contract_path()`). Each check has a row of its own name.
"""

import inspect
import sys
import tempfile
from pathlib import Path

from kerasdl import registry
from kerasdl.errors import KerasdlError
from kerasdl.errors import RecipeError

# What a shipped recipe may import (a copied recipe runs without kerasdl).
ALLOWED_IMPORTS = {"keras", "tensorflow", "keras_tuner", "numpy"}
HEADER_FIELDS = ("Default data:", "Result:", "Usage:")


class _Report:
    """Collects the outcome of each check: passed, or violated with a message."""

    def __init__(self, recipe):
        self.recipe = recipe
        self.checks = []

    def passed(self, check):
        self.checks.append({"check": check, "passed": True, "message": ""})

    def violated(self, check, message):
        self.checks.append({"check": check, "passed": False, "message": message})

    def warned(self, check, message):
        self.checks.append({"check": check, "passed": True, "message": f"warning: {message}"})

    def as_dict(self):
        violations = [c for c in self.checks if not c["passed"]]
        return {"recipe": str(self.recipe), "passed": not violations,
                "violations": violations, "checks": self.checks}


def check_recipe(recipe, steps=2, data=None, target=None):
    """Checks recipe `recipe` (a name or a file path) against the recipe contract.

    Args:
        recipe: a shipped recipe's name, or the path of a recipe file.
        steps: training steps run on the default model.
        data, target: data to check on instead of the recipe's default data.

    Returns:
        A dict: `recipe`, `passed` (no violation), `violations` and `checks` (each a
        dict of `check`, `passed` and `message`).

    Raises:
        RecipeError: for an unknown recipe name or a recipe file that does not exist.
    """
    report = _Report(recipe)
    registry.recipe_path(recipe)  # an unknown name or a missing file is a usage error
    info = _check_source(recipe, report)
    if info is None:
        return report.as_dict()
    try:
        module = registry.load_recipe(recipe)
    except RecipeError as error:
        report.violated("contract names", str(error))
        return report.as_dict()
    report.passed("contract names")
    if not _check_declarations(module, report):
        return report.as_dict()
    _check_hook_signatures(module, report)
    try:
        _check_model(module, info, report, steps, data, target)
    except KerasdlError as error:  # the recipe's data cannot be loaded or used
        report.violated("default data", str(error))
    return report.as_dict()


def _check_source(recipe, report):
    """The header, imports and static search space, read as text; the info or None."""
    try:
        info = registry.recipe_info(recipe)
    except RecipeError as error:
        report.violated("source", str(error))
        return None
    missing = [field for field in HEADER_FIELDS if field not in info["doc"]]
    if not info["doc"] or info["title"] == info["name"] and not info["description"]:
        report.violated("header", "the module docstring must start with a title line and a "
                        "one-line description")
    elif missing:
        report.violated("header", f"the module docstring lacks {', '.join(missing)}")
    else:
        report.passed("header")
    source = registry.recipe_source(recipe)
    imported = sorted({line.split()[1].split(".")[0] for line in source.splitlines()
                       if line.startswith(("import ", "from "))}
                      - ALLOWED_IMPORTS - set(sys.stdlib_module_names))
    if not imported:
        report.passed("imports")
    elif registry.is_file_reference(recipe):
        report.warned("imports", f"imports {', '.join(imported)}: a copy runs only where they "
                      "are installed (shipped recipes import keras, tensorflow, keras_tuner, "
                      "numpy and the standard library only)")
    else:
        report.violated("imports", f"imports {', '.join(imported)}; a recipe imports only "
                        "keras, tensorflow, keras_tuner, numpy and the standard library")
    if "__main__" not in source:
        report.violated("demo", "no `if __name__ == \"__main__\":` demo that trains on data "
                        "the file makes itself")
    else:
        report.passed("demo")
    return info


def _check_declarations(module, report):
    """TASK, DEFAULTS, OBJECTIVE, PRETRAINED and the two required functions' signatures."""
    import keras_tuner

    ok = True
    defaults = module.DEFAULTS
    if not isinstance(defaults, dict) or not isinstance(defaults.get("data"), str):
        report.violated("DEFAULTS", "DEFAULTS must be a dict naming the default `data`. "
                        f"Received: DEFAULTS={defaults!r}")
        ok = False
    else:
        report.passed("DEFAULTS")
    if isinstance(module.OBJECTIVE, (str, keras_tuner.Objective)):
        report.passed("OBJECTIVE")
    else:
        report.violated("OBJECTIVE", "OBJECTIVE must be a metric name or a "
                        f"keras_tuner.Objective. Received: {module.OBJECTIVE!r}")
    build = _parameters(module.build_model)
    if build is None or build[:2] != ["hp", "spec"]:
        report.violated("build_model", f"build_model must take (hp, spec). Received: "
                        f"({', '.join(build or [])})")
        ok = False
    else:
        report.passed("build_model")
    pipeline = _parameters(module.make_pipeline)
    if pipeline is None or pipeline[:4] != ["ds", "spec", "hp", "training"] \
            or "batch_size" not in pipeline:
        report.violated("make_pipeline", "make_pipeline must take (ds, spec, hp, training, "
                        f"batch_size=...). Received: ({', '.join(pipeline or [])})")
        ok = False
    else:
        report.passed("make_pipeline")
    declared = registry.pretrained_of(module)
    if declared is not None:
        files = declared.get("weights_files") if isinstance(declared, dict) else None
        if (not isinstance(declared, dict) or not isinstance(declared.get("layer"), str)
                or not isinstance(files, (list, tuple))
                or not all(isinstance(pattern, str) for pattern in files)):
            report.violated("PRETRAINED", "PRETRAINED must be {\"layer\": NAME, "
                            "\"weights_files\": [GLOB, ...]}. Received: "
                            f"PRETRAINED={declared!r}")
        elif "weights" not in defaults:
            report.violated("PRETRAINED", "a recipe with PRETRAINED gives its default "
                            "`weights` in DEFAULTS (imagenet or none)")
        else:
            report.passed("PRETRAINED")
    return ok


def _parameters(function):
    try:
        return list(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return None


def _check_hook_signatures(module, report):
    """Each declared hook takes the arguments the library passes it."""
    for name, arguments in registry.HOOKS.items():
        function = registry.hook_of(module, name)
        if function is None:
            continue
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError):
            continue  # a builtin or C function: nothing to read
        try:
            if name == "fit":  # called as fit(hp, model, train_data, validation_data=..., ...)
                signature.bind(None, None, None, **{key: None for key in arguments[3:]})
            else:
                signature.bind(*[None for _ in arguments[:-1]], **{arguments[-1]: None})
        except TypeError:
            report.violated(f"hook {name}", f"{name} must accept ({', '.join(arguments)}) "
                            f"as the recipe contract says ({registry.contract_path()}). Received: "
                            f"{name}{signature}")
            continue
        report.passed(f"hook {name}")


def _check_model(module, info, report, steps, data, target):
    """Builds, trains a few steps, saves and reloads the default model; calls the hooks."""
    import keras
    import keras_tuner
    import numpy as np

    from kerasdl import settings as run_settings
    from kerasdl.data import load_data
    from kerasdl.hparams import describe
    from kerasdl.session import seed_everything

    resolved = run_settings.resolve(module.DEFAULTS, None, {"data": data, "target": target})
    seed_everything(resolved["seed"])
    splits = load_data(resolved["data"], module.TASK, resolved)
    spec = dict(splits.spec)
    if registry.pretrained_of(module):
        spec["weights"] = "none"  # the same layers, without downloading weights

    def build():
        seed_everything(resolved["seed"])
        hp = keras_tuner.HyperParameters()
        return module.build_model(hp, spec), hp

    try:
        model, hp = build()
    except Exception as error:  # the recipe's own code: any error is the finding
        report.violated("default model", f"build_model(HyperParameters(), spec) raised "
                        f"{_describe(error)}")
        return
    if getattr(model, "optimizer", None) is None:
        report.violated("default model", "build_model must return a compiled keras.Model")
        return
    report.passed("default model")

    try:
        again, _ = build()
        same = all(np.array_equal(np.asarray(a), np.asarray(b))
                   for a, b in zip(model.get_weights(), again.get_weights()))
        if same:
            report.passed("seed")
        else:
            report.violated("seed", "two builds with the same seed gave different initial "
                            "weights: draw random numbers through Keras (seeded by "
                            "keras.utils.set_random_seed), not from an unseeded source")
        del again
    except Exception as error:
        report.violated("seed", f"a second build raised {_describe(error)}")

    try:
        batches = module.make_pipeline(splits.train, spec, hp, training=True, batch_size=8)
        validation = module.make_pipeline(splits.validation, spec, hp, training=False,
                                          batch_size=8)
        batch = next(iter(batches))
    except Exception as error:
        report.violated("pipeline", f"make_pipeline raised {_describe(error)}")
        return
    report.passed("pipeline")

    real = {row["name"]: row for row in describe(hp)}
    static = {row["name"]: row for row in info["search_space"]}
    wrong = sorted(set(real) ^ set(static)) + sorted(
        name for name in set(real) & set(static)
        if (static[name]["type"], static[name].get("default"))
        != (real[name]["type"], real[name]["default"]))
    if wrong:
        report.violated("search space", f"the search space read from the source differs from "
                        f"the one built for {', '.join(wrong)}: write each knob as a literal "
                        "hp.Int/Float/Choice/Boolean/Fixed(\"name\", ..., default=...) call "
                        "on `hp`")
    else:
        report.passed("search space")
    _check_stated_parameters(info["parameters"], model.count_params(),
                             registry.is_file_reference(report.recipe), report)

    fit = registry.hook_of(module, "fit")
    try:
        if fit is not None:
            history = fit(hp, model, batches.take(steps), validation_data=validation.take(2),
                          epochs=1, initial_epoch=0, callbacks=[], verbose=0)
        else:
            history = model.fit(batches.take(steps), epochs=1, verbose=0, shuffle=False)
    except Exception as error:
        report.violated("training", f"{'fit' if fit else 'model.fit'} on {steps} batches of "
                        f"the recipe's pipeline raised {_describe(error)}")
        return
    values = getattr(history, "history", {}) or {}
    losses = [value[-1] for name, value in values.items() if "loss" in name and value]
    if not all(np.isfinite(losses)):
        report.violated("training", f"the loss is not finite after {steps} steps: {losses}")
    else:
        report.passed("training")

    x = batch[0] if isinstance(batch, tuple) else batch
    generate = registry.hook_of(module, "generate")
    with tempfile.TemporaryDirectory(prefix="kerasdl-check-") as folder:
        path = Path(folder) / "model.keras"
        try:
            model.save(path)
            reloaded = keras.saving.load_model(path, safe_mode=True)
            if generate is not None:
                expected = generate(model, 8, seed=3)
                actual = generate(reloaded, 8, seed=3)
            else:
                expected, actual = model.predict_on_batch(x), reloaded.predict_on_batch(x)
            np.testing.assert_allclose(np.asarray(actual), np.asarray(expected),
                                       rtol=1e-5, atol=1e-5)
        except AssertionError:
            report.violated("save and reload", "the reloaded model answers differently: give "
                            "custom layers and models a complete get_config()")
        except Exception as error:
            report.violated("save and reload", f"saving and reloading (safe mode) raised "
                            f"{_describe(error)}: custom layers and models need "
                            "@keras.saving.register_keras_serializable and a get_config()")
        else:
            report.passed("save and reload")
    _check_hooks(module, model, spec, x, report)


def _check_stated_parameters(stated, actual, own_file, report):
    """The header's `Parameters:` line against the default model's count.

    Stale in a user's own file (after `kerasdl copy` and an edit), it is a warning; a
    shipped recipe's header is documentation users read, so there it is a violation.
    """
    if stated is None:
        return
    if stated == actual:
        report.passed("header parameters")
        return
    message = (f"the header says {stated:,} parameters; the default model has {actual:,}: "
               "update the header's `Parameters:` line")
    if own_file:
        report.warned("header parameters", message)
    else:
        report.violated("header parameters", message)


def _check_hooks(module, model, spec, x, report):
    """Calls each declared hook once and checks what it returns."""
    import keras
    import numpy as np

    calls = {
        "generate": lambda f: f(model, 4, seed=0),
        "reconstruction_target": lambda f: f(np.asarray(x)),
        "image_grids": lambda f: f(model),
        "serving_model": lambda f: f(model),
    }
    for name, call in calls.items():
        function = registry.hook_of(module, name)
        if function is None:
            continue
        try:
            result = call(function)
        except Exception as error:
            report.violated(f"hook {name} call", f"{name} raised {_describe(error)}")
            continue
        problem = None
        if name == "generate":
            images = np.asarray(result)
            if images.shape[:1] != (4,) or images.min() < 0 or images.max() > 1:
                problem = (f"generate(model, 4) must return 4 images in [0, 1]; received shape "
                           f"{images.shape}, range {images.min():.3g}..{images.max():.3g}")
        elif name == "reconstruction_target":
            target = np.asarray(result)
            output = np.asarray(model.predict_on_batch(x))
            if target.shape != output.shape:
                problem = (f"reconstruction_target gives shape {target.shape}; the model "
                           f"reconstructs {output.shape}")
        elif name == "image_grids":
            if not isinstance(result, dict) or not all(
                    isinstance(key, str) and isinstance(value, tuple) and len(value) == 2
                    for key, value in result.items()):
                problem = "image_grids must return {name: (images, title)}"
        elif not isinstance(result, keras.Model):
            problem = f"serving_model must return a keras.Model. Received: {type(result)}"
        if problem:
            report.violated(f"hook {name} call", problem)
        else:
            report.passed(f"hook {name} call")
    declared = registry.pretrained_of(module)
    if isinstance(declared, dict) and isinstance(declared.get("layer"), str):
        try:
            base = model.get_layer(declared["layer"])
        except ValueError:
            report.violated("PRETRAINED base", f"the model has no layer {declared['layer']!r}, the "
                            "pretrained base PRETRAINED names")
        else:
            if isinstance(base, keras.Model):
                report.passed("PRETRAINED base")
            else:
                report.violated("PRETRAINED base", f"layer {declared['layer']!r} is a "
                                f"{type(base).__name__}, not a nested keras.Model")


def _describe(error):
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"
