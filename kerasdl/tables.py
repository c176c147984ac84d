"""The tables and reports the commands print: recipes, runs, search spaces, searches, figures.

Each function returns the text (or the JSON text) of one result; `kerasdl.cli` prints
it on stdout. None of them imports TensorFlow but `parameters`, which builds a model.
"""

import json
import shlex
import sys
from pathlib import Path

from kerasdl import pareto
from kerasdl import registry
from kerasdl.errors import KerasdlError


def table(rows, headers):
    """Rows under their headers, in columns as wide as their widest value."""
    widths = [max(len(str(value)) for value in column) for column in zip(headers, *rows)]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def _indented(text):
    return "  " + text.replace("\n", "\n  ")


def _format(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return value


def recipes(as_json=False):
    """`kerasdl list`: every recipe's name, task, default data and description."""
    infos = [registry.recipe_info(name) for name in registry.list_recipes()]
    if as_json:
        return json.dumps([{key: info[key] for key in ("name", "task", "defaults",
                                                       "description")} for info in infos],
                          indent=2)
    rows = [(info["name"], info["task"], info["defaults"].get("data", "-"), info["description"])
            for info in infos]
    return table(rows, ("NAME", "TASK", "DEFAULT DATA", "DESCRIPTION"))


def runs(root, as_json=False):
    """`kerasdl list --runs ROOT`: the run directories under `root` with their status.

    Raises:
        UsageError: when `root` is not a folder.
    """
    from kerasdl.errors import UsageError
    from kerasdl.runs import list_runs

    if not Path(root).is_dir():
        kind = "is a file, not a folder" if Path(root).exists() else "not found"
        raise UsageError(f"Runs folder {root!r} {kind}: give the folder your runs "
                         "are under (`kerasdl train` writes them under runs/).")
    found = list_runs(root)
    if as_json:
        return json.dumps(found, indent=2)
    rows = [(run["path"], run["recipe"], run["status"], run["created"],
             ", ".join(f"{k} {v:.4g}" for k, v in run["test"].items()) or "-")
            for run in found]
    return table(rows, ("RUN", "RECIPE", "STATUS", "CREATED", "TEST"))


def domain(param):
    """A search-space entry's values in words: `1 .. 8 step 1 (log)`, `a, b`..."""
    kind = param["type"]
    if kind in ("Int", "Float"):
        text = f"{param.get('min_value')} .. {param.get('max_value')}"
        if param.get("step") is not None:
            text += f" step {param['step']}"
        if param.get("sampling") not in (None, "linear"):
            text += f" ({param['sampling']})"
        return text
    if kind == "Choice":
        values = param.get("values", [])
        return ", ".join(map(str, values)) if isinstance(values, list) else str(values)
    if kind == "Boolean":
        return "true, false"
    return str(param.get("value"))


def recipe(name, as_json=False):
    """`kerasdl show RECIPE`: its header, task, defaults and search space."""
    info = registry.contract_info(name)
    if as_json:
        return json.dumps(info, indent=2, default=str)
    objective = info["objective"]
    lines = [info["doc"],
             f"\nTask: {info['task']}    Objective: {objective['name']} "
             f"({'maximised' if objective['direction'] == 'max' else 'minimised'})",
             "\nDefaults:"]
    lines += [f"  {key}: {value}" for key, value in info["defaults"].items()]
    lines.append("\nSearch space (`--set NAME=VALUE` pins one; `kerasdl tune` searches them):")
    rows = [(p["name"], p["type"], domain(p), p.get("default", p.get("value", "")))
            for p in info["search_space"]]
    lines.append(_indented(table(rows, ("NAME", "TYPE", "RANGE / CHOICES", "DEFAULT"))))
    if info["parameters"] is not None:  # read from the docstring, not counted (TF-free)
        lines.append(f"\nParameters stated by the header: {info['parameters']:,} (on "
                     f"{info['defaults'].get('data', 'its default data')}; `kerasdl show "
                     f"{shlex.quote(name)} --params` builds the default model and counts them)")
    return "\n".join(lines)


def parameters(name, as_json=False):
    """`kerasdl show RECIPE --params`: each layer's weights and biases with its formula.

    Builds the recipe's default model on its default data (TensorFlow must be started).
    """
    import keras_tuner

    from kerasdl import settings
    from kerasdl.data import load_data
    from kerasdl.params import parameter_rows

    module = registry.load_recipe(name)
    resolved = settings.resolve(module.DEFAULTS)
    spec = load_data(resolved["data"], module.TASK, resolved).spec
    if registry.pretrained_of(module):  # the same layers without downloading weights
        spec = {**spec, "weights": "none"}
    model = module.build_model(keras_tuner.HyperParameters(), spec)
    rows = parameter_rows(model)
    if as_json:
        return json.dumps({"layers": rows, "total": model.count_params()}, indent=2)
    return (table([(r["layer"], r["type"], r["formula"], f"{r['count']:,}") for r in rows],
                  ("LAYER", "TYPE", "WEIGHTS AND BIASES", "COUNT"))
            + f"\n\nTotal: {sum(r['count'] for r in rows):,} by the formulas; Keras counts "
            f"{model.count_params():,} (the default model on {resolved['data']}).")


def search(directory, as_json=False, top=10):
    """`kerasdl show SEARCH_DIR`: a search's best `top` trials and hyperparameter importance.

    Damaged trial files mark their trials DAMAGED, with a warning on stderr.

    Raises:
        KerasdlError: for a search without results.csv or a damaged search.json.
    """
    import pandas as pd

    from kerasdl.importance import METHOD
    from kerasdl.importance import importance
    from kerasdl.runs import read_json

    directory = Path(directory)
    meta = read_json(directory / "search.json", ("recipe", "tuner", "objective",
                                                 "search_space"),
                     "run `kerasdl tune` with --overwrite to start the search afresh, or "
                     "restore the file from a backup")
    results = directory / "results.csv"
    if not results.exists():
        raise KerasdlError(f"Search {str(directory)!r} has no results.csv yet; run "
                           "`kerasdl tune` again to continue it.")
    frame = pd.read_csv(results, dtype={"trial_id": str})
    # The truth is in the trial files: one that cannot be read is not a completed trial.
    damaged = []
    for trial_file in sorted((directory / "tuner").glob("trial_*/trial.json")):
        try:
            json.loads(trial_file.read_text())
        except (ValueError, OSError):
            damaged.append(trial_file.parent.name[len("trial_"):])
    frame.loc[frame["trial_id"].isin(damaged), "status"] = "DAMAGED"
    if damaged:
        print(f"Warning: {'trials' if len(damaged) > 1 else 'trial'} {', '.join(damaged)} "
              f"of {str(directory)!r} {'are' if len(damaged) > 1 else 'is'} damaged; run "
              "`kerasdl tune` again with the same options to set it aside and re-run it.",
              file=sys.stderr)
    objective = meta["objective"]["name"]
    # Imported trials (`--warm-start`) are finished trials too; pruned ones stopped early.
    done = frame[frame["status"].isin(["COMPLETED", "IMPORTED"])].sort_values(
        objective, ascending=meta["objective"]["direction"] == "min")
    names = [p["name"] for p in meta["search_space"] if p["name"] in done.columns]
    searched = [n for n in names if n not in meta.get("pinned", {})]
    shares = importance(done, searched, objective)
    front = pareto.front_frame(frame, meta) if pareto.others(meta) else None
    if as_json:
        return json.dumps({"trials": json.loads(done.head(top).to_json(orient="records")),
                           "importance": dict(shares), "importance_method": METHOD,
                           **({"pareto": json.loads(front.to_json(orient="records"))}
                              if front is not None else {})}, indent=2)
    counts = frame["status"].value_counts()
    others = [f"{counts[s]} {s.lower()}"
              for s in ("IMPORTED", "PRUNED", "DIVERGED", "FAILED", "INVALID") if counts.get(s)]
    lines = [f"Search of {meta['recipe']} with the {meta['tuner']} tuner: "
             f"{int(counts.get('COMPLETED', 0))} of {len(frame)} trials completed"
             + (f" ({len(damaged)} damaged)" if damaged else "")
             + (f", {', '.join(others)}" if others else "")
             + f"; {objective} ({meta['objective']['direction']})."]
    columns = ["trial_id", objective, "status", "best_epoch", "epochs", "wall_seconds"] + names
    columns = [c for c in columns if c in done.columns]
    rows = [[_format(row[c]) for c in columns] for _, row in done.head(top).iterrows()]
    lines.append(table(rows, columns))
    unranked = [n for n in searched if n not in dict(shares)]
    if shares:
        lines.append(f"\nHyperparameter importance over {len(done)} finished trials; {METHOD}:")
        lines.append(_indented(table([(name, f"{share:.2f}") for name, share in shares],
                                     ("HYPERPARAMETER", "IMPORTANCE"))))
        if unranked:
            lines.append(f"Not ranked (every finished trial a value of its own; more trials "
                         f"would tell): {', '.join(unranked)}.")
    else:
        lines.append(f"\nHyperparameter importance: needs 3 finished trials with different "
                     f"{objective}, and values that more than one trial shares.")
    if front is not None:
        left_out, gaps = pareto.lacking(frame, meta)
        lines.append(f"\nPareto front of {len(done)} finished trials ("
                     + ", ".join(f"{c} {d}" for c, d in pareto.objective_columns(meta))
                     + (f"; {len(left_out)} without {' or '.join(gaps)} left out" if gaps else "")
                     + "):")
        rows = [[_format(row[c]) for c in front.columns] for _, row in front.iterrows()]
        lines.append(table(rows, list(front.columns)) if rows else "(no finished trial has "
                     "every objective)")
    return "\n".join(lines)


def bench(recipe_name, figures, as_json=False):
    """`kerasdl bench`: the figures of `kerasdl.bench.bench`, one row each."""
    if as_json:
        return json.dumps(figures, indent=2)
    rows = [
        ("training", f"{figures['train_samples_per_second']:,.1f} samples/s, "
                     f"{figures['step_ms']:.2f} ms/step (batch {figures['batch_size']}; "
                     f"median of {figures['repeats']}, best {figures['best_step_ms']:.2f} ms)"),
        ("input pipeline", f"{figures['pipeline_samples_per_second']:,.1f} samples/s alone, "
                           f"{figures['pipeline_headroom']}x what training consumes"),
        ("FLOPs/sample", f"{figures['train_flops_per_sample']:,} (training: 3x forward)"),
        ("achieved", f"{figures['achieved_gflops']:.2f} GFLOP/s"),
        ("matmul peak", f"{figures['matmul_peak_gflops']:.1f} GFLOP/s (same run)"),
        ("utilisation", f"{100 * figures['utilisation']:.1f}%"),
        ("device", f"{figures['device']}, {figures['precision']}, strategy "
                   f"{figures['strategy']} ({figures['replicas']} replica(s)), "
                   f"jit {figures['jit']}, {figures['steps_per_execution']} steps/execution"),
    ]
    return table(rows, ("RECIPE " + recipe_name, ""))


def run_result(run_dir):
    """`kerasdl train --json`: the run's path and its metrics.json (empty without one)."""
    from kerasdl.runs import read_json

    metrics = Path(run_dir) / "metrics.json"
    return json.dumps({"run": str(run_dir),
                       "metrics": read_json(metrics) if metrics.is_file() else {}}, indent=2)


def search_result(directory):
    """`kerasdl tune --json`: the search directory, best hyperparameters and best run."""
    from kerasdl.runs import read_json

    directory = Path(directory)
    found = {"directory": str(directory)}
    best = directory / "best_hyperparameters.json"
    if best.is_file():
        found["best"] = read_json(best)
    metrics = directory / "best" / "metrics.json"
    if metrics.is_file():
        found["best_run"] = {"run": str(metrics.parent), "metrics": read_json(metrics)}
    return json.dumps(found, indent=2)


def contract_checks(report, as_json=False):
    """`kerasdl check`: each rule of the recipe contract, ok, warning or VIOLATED."""
    if as_json:
        return json.dumps(report, indent=2)
    rows = [(item["check"], "VIOLATED" if not item["passed"] else "warning"
             if item["message"].startswith("warning: ") else "ok",
             item["message"].removeprefix("warning: ")) for item in report["checks"]]
    return table(rows, ("CHECK", "RESULT", "DETAIL"))


def contract_notes(report):
    """`kerasdl check`'s lines for stderr: each warning and violation, and the contract's
    path when a rule is broken."""
    lines = [f"Warning: {item['check']}: {item['message'].removeprefix('warning: ')}"
             for item in report["checks"]
             if item["passed"] and item["message"].startswith("warning: ")]
    lines += [f"Violation: {item['check']}: {item['message']}" for item in report["violations"]]
    if report["violations"]:
        lines.append(f"The recipe contract: {registry.contract_path()}")
    return lines


def metrics(found, as_json=False):
    """`kerasdl evaluate`: each metric and its value."""
    if as_json:
        return json.dumps(found, indent=2)
    rows = [(name, f"{value:.4f}" if isinstance(value, float) else value)
            for name, value in found.items()]
    return table(rows, ("METRIC", "VALUE"))


def devices(found, as_json=False):
    """`kerasdl info`: what TensorFlow sees (`kerasdl.devices.info`), a line a key."""
    if as_json:
        return json.dumps(found, indent=2)
    lines = []
    for key, value in found.items():
        if key == "physical_devices":
            value = ", ".join(f"{d['name']} ({d['type']})" for d in value)
        elif key == "logical_devices":
            value = ", ".join(value)
        elif key == "gpus":
            value = "; ".join(", ".join(f"{k}: {v}" for k, v in gpu.items())
                              for gpu in value) or "none"
        lines.append(f"{key:17} {value}")
    return "\n".join(lines)


def export_notes(check, quantize=None):
    """`kerasdl export`'s lines for stderr: how the artifact was checked, its size and,
    quantized, its size and test metrics beside the float model's."""
    quantized = check.get("quantization")
    if not quantized:
        return [f"Checked in {check['runtime']} on {check['examples']} test inputs: largest "
                f"difference {check['max_abs_diff']:.3g} (tolerance atol {check['atol']}, "
                f"rtol {check['rtol']}): passed; {check['bytes']:,} bytes"]
    lines = [f"Quantized {quantize}: {check['bytes']:,} bytes, "
             f"{quantized['size_ratio']:.2f}x the float model's "
             f"{quantized['float_bytes']:,}; largest difference from Keras on "
             f"{check['examples']} test inputs {check['max_abs_diff']:.3g}"]
    if "int8_layers" in quantized:
        lines.append(f"Keras quantized {len(quantized['int8_layers'])} layer(s) to int8: "
                     f"{', '.join(quantized['int8_layers']) or 'none'} (it covers Dense, "
                     "EinsumDense and Embedding only)")
    if quantized["size_ratio"] >= 1:
        lines.append(f"Warning: the {quantize} file is {quantized['size_ratio']:.2f}x the float "
                     "one, not smaller: this model has too few weights for quantization to pay "
                     "for what it adds; the float export is the smaller one.")
    if quantized["metrics"]:
        shared = [k for k in quantized["metrics"] if k in quantized["float_metrics"]
                  and isinstance(quantized["metrics"][k], float)]
        lines.append("Test split: " + ", ".join(
            f"{k} {quantized['metrics'][k]:.4f} (float {quantized['float_metrics'][k]:.4f})"
            for k in shared))
        # The model's metrics judge it; its loss (probabilities' calibration) only when it
        # has nothing else.
        judged = [k for k in shared if k != "loss"] or shared
        moved = [k for k in judged if _moved(quantized["float_metrics"][k],
                                             quantized["metrics"][k])]
        if moved:
            lines.append(f"Warning: {quantize} quantization changed the test split's "
                         + ", ".join(f"{k} from {quantized['float_metrics'][k]:.4f} to "
                                     f"{quantized['metrics'][k]:.4f}" for k in moved)
                         + f" (more than {QUANTIZED_TOLERANCE:.0%}); check it on your data "
                         "before serving it, or export without --quantize.")
    else:
        lines.append("Test metrics: not measured (the recipe scores itself in its own "
                     "test_step).")
    return lines


# How far a quantized model's test metric may move from the float model's (relative)
# before `export` warns.
QUANTIZED_TOLERANCE = 0.05


def _moved(before, after):
    return abs(after - before) > max(QUANTIZED_TOLERANCE * abs(before), 1e-3)
