"""The `kerasdl` command line: one Click group, each command a thin shell.

Commands parse their options, call one library function and print the result:
results (tables, paths, CSV, JSON) go to stdout, progress and errors to stderr.
TensorFlow is imported only inside the commands that need it, so `--help`,
`list`, `show` and `copy` answer at once.
"""

import contextlib
import json
import os
import shlex
import sys
from pathlib import Path

import click

from kerasdl import pareto
from kerasdl import registry
from kerasdl.errors import KerasdlError
from kerasdl.errors import UsageError
from kerasdl.pruning import STARTUP_TRIALS
from kerasdl.pruning import WARMUP_EPOCHS

# TensorFlow's C++ start-up notices say nothing a user can act on.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _start_tensorflow():
    from kerasdl.devices import start_tensorflow

    start_tensorflow()


# Where results go while a command runs: the real stdout. Everything else that would
# reach stdout (Keras' progress and downloads, Keras Tuner's trial reports, TFDS,
# print() in a library, C code writing to file descriptor 1) goes to stderr instead.
_RESULTS = None
_RESULTS_DESCRIPTOR = None  # a duplicate of the real stdout's descriptor, while redirected


def _result(message="", nl=True):
    """Prints a result (a path, table, CSV or JSON) on stdout."""
    click.echo(message, file=_RESULTS or sys.stdout, nl=nl)


@contextlib.contextmanager
def _children_print_results():
    """Gives child processes that print this command's results the real stdout."""
    if _RESULTS_DESCRIPTOR is None:
        yield
        return
    sys.stderr.flush()
    os.dup2(_RESULTS_DESCRIPTOR, 1)
    try:
        yield
    finally:
        os.dup2(2, 1)


@contextlib.contextmanager
def _results_only():
    """Sends stdout to stderr for the duration of a command, except `_result()`."""
    global _RESULTS, _RESULTS_DESCRIPTOR
    saved = (_RESULTS, sys.stdout, _RESULTS_DESCRIPTOR)
    stdout = sys.stdout
    duplicate = None
    try:
        descriptors = (stdout.fileno(), sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):  # captured (tests): no descriptor
        descriptors = None
    if descriptors == (1, 2):
        stdout.flush()
        duplicate = os.dup(1)
        os.dup2(2, 1)
        stdout = open(duplicate, "w", encoding=sys.stdout.encoding or "utf-8",
                      errors="replace", closefd=False)
    _RESULTS, _RESULTS_DESCRIPTOR = stdout, duplicate
    saved_stderr = sys.stderr
    from kerasdl.progress import Uncoloured
    from kerasdl.progress import colour_allowed

    if not colour_allowed():  # NO_COLOR, or a log file: no ANSI codes
        sys.stderr = Uncoloured(sys.stderr)
    sys.stdout = sys.stderr
    try:
        yield
    finally:
        try:
            sys.stderr.flush()
            stdout.flush()
        finally:
            sys.stderr = saved_stderr
            _RESULTS, sys.stdout, _RESULTS_DESCRIPTOR = saved
            if duplicate is not None:
                stdout.close()
                os.dup2(duplicate, 1)
                os.close(duplicate)


class KerasdlCommand(click.Command):
    """A command whose stdout carries its results only (see `_results_only`)."""

    def invoke(self, ctx):
        with _results_only():
            return super().invoke(ctx)


# Click 8.2+ raises this for a bare `kerasdl`; 8.1 prints the help itself.
_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


class KerasdlGroup(click.Group):
    """A Click group that reports every error as one line on stderr, with no traceback.

    Usage errors (Click's and `kerasdl.errors.UsageError`) exit 2, other
    `KerasdlError`s their `exit_code`, anything unexpected 1, Ctrl-C 130; set
    KERASDL_DEBUG=1 to see the traceback of an unexpected error.
    """

    command_class = KerasdlCommand

    def main(self, args=None, prog_name=None, **kwargs):
        kwargs["standalone_mode"] = False
        try:
            result = super().main(args=args, prog_name="kerasdl", **kwargs)
        except _NO_ARGS_IS_HELP as error:  # bare `kerasdl`: its help, not an error line
            click.echo(error.ctx.get_help(), err=True)
            sys.exit(2)
        except click.UsageError as error:
            hint = f" See '{error.ctx.command_path} --help'." if error.ctx else ""
            _fail(f"{error.format_message().rstrip('.')}.{hint}", 2)
        except click.ClickException as error:
            _fail(error.format_message(), error.exit_code)
        except (click.exceptions.Abort, KeyboardInterrupt):
            _fail("Interrupted.", 130)
        except KerasdlError as error:
            from kerasdl.diskspace import DiskFull

            if isinstance(error, DiskFull) and _PROCESS_ENTRY["hard_exit"]:
                # HDF5 files left open by the failed write crash h5py when the
                # interpreter tears them down (exit -11): end right after the one line.
                # Only as the `kerasdl` process itself, never inside a caller's process.
                click.echo(f"Error: {error}", err=True)
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(error.exit_code)
            _fail(str(error), error.exit_code)
        except Exception as error:
            if os.environ.get("KERASDL_DEBUG"):
                raise
            message = str(error).strip().splitlines()[0] if str(error).strip() else ""
            _fail(f"{type(error).__name__}: {message} (set KERASDL_DEBUG=1 for the traceback)", 1)
        sys.exit(result if isinstance(result, int) else 0)


# Set by `main()`, the console script: this process is kerasdl's own.
_PROCESS_ENTRY = {"hard_exit": False}


def _quiet_disk_full_cleanup(unraisable):
    """Drops h5py's "Exception ignored in ... __dealloc__" tracebacks of a write that
    failed for lack of space (the one-line DiskFull error says it); passes on the rest."""
    if _h5py_disk_full(unraisable.exc_value, repr(unraisable.object)):
        return
    sys.__unraisablehook__(unraisable)


def _h5py_disk_full(value, where):
    text = f"{value}"
    return "h5py" in where and ("errno = 28" in text or "No space left" in text)


def _quiet_disk_full_traceback(kind, value, traceback):
    """Cython prints h5py's failed `__dealloc__` through `sys.excepthook` too."""
    import traceback as tracebacks

    if _h5py_disk_full(value, "".join(tracebacks.format_tb(traceback))):
        return
    sys.__excepthook__(kind, value, traceback)


def _fail(message, code):
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def _complete_recipes(ctx, param, incomplete):
    """Shell completion of a RECIPE argument: the recipe names."""
    return [name for name in registry.list_recipes() if name.startswith(incomplete)]


def _existing(path, what):
    """Checks before TensorFlow starts that a path the command reads exists (exit 2)."""
    if path is not None and "://" not in str(path) and not Path(path).exists():
        raise UsageError(f"{what} not found: {str(path)!r}.")


# Options shared by several commands, declared once.
def _data_options(command):
    for option in reversed([
        click.option("--data", help=f"Embedded data set ({', '.join(registry.data_sets())}), "
                     "tfds:NAME, a CSV file or an image folder (one sub-folder per class)."),
        click.option("--target", help="Column to predict in a CSV file."),
        click.option("--data-dir", type=click.Path(file_okay=False),
                     help="Folder of TensorFlow Datasets data (for tfds:NAME)."),
        click.option("--skip-bad-files", is_flag=True, default=None,
                     help="Leave out image files that cannot be decoded (counted on "
                     "stderr) instead of stopping with the list of them."),
    ]):
        command = option(command)
    return command


def _settings_options(command):
    for option in reversed([
        click.option("--image-size", type=int, help="Side in pixels images are resized to "
                     "(image folders, TFDS; vgg16 and mobilenet resize every image)."),
        click.option("--classes", help="Keep only these classes, comma-separated, in this "
                     "order: a task of its own (e.g. --classes 5,6,7,8,9 of digits)."),
        click.option("--train-examples", type=int, help="Train on only this many training "
                     "examples, drawn at random (few-shot experiments)."),
        click.option("--weights", help="Pretrained weights of vgg16 and mobilenet: imagenet "
                     "(downloaded by Keras), none (from scratch) or a .h5 weights file."),
        click.option("--epochs", type=int, help="Training epochs (a positive integer; "
                     "for tune, per trial)."),
        click.option("--batch-size", type=int, help="Batch size (a positive integer)."),
        click.option("--set", "assignments", multiple=True, metavar="NAME=VALUE",
                     help="Pin a hyperparameter of the search space; repeatable."),
        click.option("--config", "config_file", type=click.Path(dir_okay=False),
                     help="JSON or YAML file of settings; the command line wins."),
        click.option("--seed", type=int, help="Random seed (default 1337)."),
    ]):
        command = option(command)
    return command


def _device_options(command):
    for option in reversed([
        click.option("--device", type=click.Choice(["auto", "cpu", "gpu"]),
                     help="Where to train (default auto: GPUs when TensorFlow sees any)."),
        click.option("--mixed-precision", is_flag=True, default=None,
                     help="mixed_float16 on GPUs, mixed_bfloat16 on CPUs with bfloat16."),
        click.option("--jit/--no-jit", default=None,
                     help="XLA compilation of the training step (default: the recipe's)."),
        click.option("--steps-per-execution", type=click.IntRange(min=1),
                     help="Training steps per call of the compiled step (default 32; "
                          "callbacks see every Nth batch)."),
        click.option("--strategy",
                     type=click.Choice(["auto", "default", "mirrored", "multiworker"]),
                     help="tf.distribute strategy (default auto: mirrored over several GPUs; "
                          "multiworker: the cluster in TF_CONFIG, train only)."),
    ]):
        command = option(command)
    return command


def _csv_options(command):
    for option in reversed([
        click.option("--sep", help="Field separator of the CSV file: one character, such as "
                     "';', '|' or '\\t' (tab). Default ','."),
        click.option("--drop", multiple=True, metavar="COLUMN",
                     help="Leave a CSV column out of the features; repeatable."),
        click.option("--time-column", metavar="COLUMN",
                     help="CSV column of dates: rows are sorted by it (forecasting with "
                     "lstm); it is not a feature."),
        click.option("--categorical", multiple=True, metavar="COLUMN",
                     help="Read a CSV column as categories (one-hot), even if it holds "
                     "numbers; repeatable."),
        click.option("--numeric", multiple=True, metavar="COLUMN",
                     help="Read a CSV column as numbers (text in it is an error); repeatable."),
    ]):
        command = option(command)
    return command


def _csv_settings(options):
    """The `_csv_options` values (arriving with the device options) as settings."""
    return {"sep": options.pop("sep", None), "drop": list(options.pop("drop", ())) or None,
            "time_column": options.pop("time_column", None),
            "categorical": list(options.pop("categorical", ())) or None,
            "numeric": list(options.pop("numeric", ())) or None}


def _device_settings(options, command=None):
    if options.get("strategy") == "multiworker" and command is not None:
        raise UsageError(f"`--strategy multiworker` is for `kerasdl train`, not `kerasdl "
                         f"{command}`. Valid here: auto, default or mirrored"
                         + (" (and `--workers N`, Keras Tuner's parallel trials)."
                            if command == "tune" else "."))
    # skip_bad_files is _data_options' --skip-bad-files, which arrives here with them.
    return {key: options.get(key) for key in ("device", "mixed_precision", "jit", "strategy",
                                              "steps_per_execution", "skip_bad_files")}


SEP_HELP = ("Field separator of the CSV file: one character, such as ';', '|' or '\\t' "
            "(tab). Default: the separator the run was trained with.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
# The names of `kerasdl compare --preset` (kept here so that --help imports no TensorFlow).
PRESET_NAMES = ["activations", "optimizers", "regularization", "initializers", "batch_size",
                "learning_rate", "loss", "imbalance"]


def _table(rows, headers):
    widths = [max(len(str(value)) for value in column) for column in zip(headers, *rows)]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


@click.group(cls=KerasdlGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kerasdl", prog_name="kerasdl")
def cli():
    """Keras deep-learning recipes: train, evaluate, predict and copy tunable models.

    Start with `kerasdl list`, then `kerasdl train cnn`.
    """


@cli.command("list")
@click.option("--runs", "runs_root", is_flag=False, flag_value="runs", default=None,
              metavar="[ROOT]", help="List the run directories under ROOT (default runs/) "
              "with their status instead of the recipes.")
@json_option
def list_command(runs_root, as_json):
    """List the recipes: name, task, default data and description."""
    if runs_root is not None:
        from kerasdl.runs import list_runs

        if not Path(runs_root).is_dir():
            kind = "is a file, not a folder" if Path(runs_root).exists() else "not found"
            raise UsageError(f"Runs folder {runs_root!r} {kind}: give the folder your runs "
                             "are under (`kerasdl train` writes them under runs/).")

        found = list_runs(runs_root)
        if as_json:
            _result(json.dumps(found, indent=2))
            return
        rows = [(run["path"], run["recipe"], run["status"], run["created"],
                 ", ".join(f"{k} {v:.4g}" for k, v in run["test"].items()) or "-")
                for run in found]
        _result(_table(rows, ("RUN", "RECIPE", "STATUS", "CREATED", "TEST")))
        return
    infos = [registry.recipe_info(name) for name in registry.list_recipes()]
    if as_json:
        _result(json.dumps([{key: info[key] for key in
                             ("name", "task", "defaults", "description")} for info in infos],
                           indent=2))
        return
    rows = [(info["name"], info["task"], info["defaults"].get("data", "-"), info["description"])
            for info in infos]
    _result(_table(rows, ("NAME", "TASK", "DEFAULT DATA", "DESCRIPTION")))


def _read_json(path):
    """Reads a JSON file kerasdl wrote, naming it when it is damaged."""
    from kerasdl.runs import read_json

    return read_json(path)


def _print_run(run_dir, as_json):
    """Prints a finished run: its path, or with `--json` its path and metrics."""
    if not as_json:
        _result(str(run_dir))
        return
    metrics_path = Path(run_dir) / "metrics.json"
    metrics = _read_json(metrics_path) if metrics_path.is_file() else {}
    _result(json.dumps({"run": str(run_dir), "metrics": metrics}, indent=2))


def _domain(param):
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


def _show_search(directory, as_json, top=10):
    import pandas as pd

    from kerasdl.runs import read_json

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
        click.echo(f"Warning: {'trials' if len(damaged) > 1 else 'trial'} {', '.join(damaged)} "
                   f"of {str(directory)!r} {'are' if len(damaged) > 1 else 'is'} damaged; run "
                   "`kerasdl tune` again with the same options to set it aside and re-run it.",
                   err=True)
    from kerasdl.importance import METHOD
    from kerasdl.importance import importance

    objective = meta["objective"]["name"]
    # Imported trials (`--warm-start`) are finished trials too; pruned ones stopped early.
    done = frame[frame["status"].isin(["COMPLETED", "IMPORTED"])].sort_values(
        objective, ascending=meta["objective"]["direction"] == "min")
    names = [p["name"] for p in meta["search_space"] if p["name"] in done.columns]
    shares = importance(done, [n for n in names if n not in meta.get("pinned", {})], objective)
    front = pareto.front_frame(frame, meta) if pareto.others(meta) else None
    if as_json:
        _result(json.dumps({"trials": json.loads(done.head(top).to_json(orient="records")),
                            "importance": dict(shares), "importance_method": METHOD,
                            **({"pareto": json.loads(front.to_json(orient="records"))}
                               if front is not None else {})},
                           indent=2))
        return
    counts = frame["status"].value_counts()
    others = [f"{counts[s]} {s.lower()}"
              for s in ("IMPORTED", "PRUNED", "DIVERGED", "FAILED", "INVALID") if counts.get(s)]
    _result(f"Search of {meta['recipe']} with the {meta['tuner']} tuner: "
            f"{int(counts.get('COMPLETED', 0))} of {len(frame)} trials completed"
            + (f" ({len(damaged)} damaged)" if damaged else "")
            + (f", {', '.join(others)}" if others else "")
            + f"; {objective} ({meta['objective']['direction']}).")
    columns = ["trial_id", objective, "status", "best_epoch", "epochs", "wall_seconds"] + names
    columns = [c for c in columns if c in done.columns]
    rows = [[_format(row[c]) for c in columns] for _, row in done.head(top).iterrows()]
    _result(_table(rows, columns))
    if shares:
        _result(f"\nHyperparameter importance over {len(done)} finished trials; {METHOD}:")
        _result("  " + _table([(name, f"{share:.2f}") for name, share in shares],
                              ("HYPERPARAMETER", "IMPORTANCE")).replace("\n", "\n  "))
    else:
        _result(f"\nHyperparameter importance: needs 3 finished trials with different "
                f"{objective}.")
    if front is not None:
        left_out, gaps = pareto.lacking(frame, meta)
        _result(f"\nPareto front of {len(done)} finished trials ("
                + ", ".join(f"{c} {d}" for c, d in pareto.objective_columns(meta))
                + (f"; {len(left_out)} without {' or '.join(gaps)} left out" if gaps else "")
                + "):")
        rows = [[_format(row[c]) for c in front.columns] for _, row in front.iterrows()]
        _result(_table(rows, list(front.columns)) if rows else "(no finished trial has "
                "every objective)")


def _format(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return value


def _show_params(recipe, as_json):
    _start_tensorflow()
    import keras_tuner

    from kerasdl import settings
    from kerasdl.data import load_data
    from kerasdl.params import parameter_rows
    from kerasdl.registry import load_recipe

    module = load_recipe(recipe)
    resolved = settings.resolve(module.DEFAULTS)
    spec = load_data(resolved["data"], module.TASK, resolved).spec
    if registry.pretrained_of(module):  # the same layers without downloading weights
        spec = {**spec, "weights": "none"}
    model = module.build_model(keras_tuner.HyperParameters(), spec)
    rows = parameter_rows(model)
    if as_json:
        _result(json.dumps({"layers": rows, "total": model.count_params()}, indent=2))
        return
    _result(_table([(r["layer"], r["type"], r["formula"], f"{r['count']:,}") for r in rows],
                   ("LAYER", "TYPE", "WEIGHTS AND BIASES", "COUNT")))
    _result(f"\nTotal: {sum(r['count'] for r in rows):,} by the formulas; Keras counts "
            f"{model.count_params():,} (the default model on {resolved['data']}).")


@cli.command()
@click.argument("recipe", shell_complete=_complete_recipes)
@click.option("--params", is_flag=True, help="Each layer's weights and biases with the formula "
              "that gives the count (builds the default model: imports TensorFlow).")
@json_option
def show(recipe, params, as_json):
    """Show a recipe's (a name or a .py file) header, defaults, search space and parameters.

    Given a search directory (from `kerasdl tune`), show its best trials.
    """
    if (Path(recipe) / "search.json").is_file():
        _show_search(Path(recipe), as_json)
        return
    if params:
        _show_params(recipe, as_json)
        return
    info = registry.contract_info(recipe)
    if as_json:
        _result(json.dumps(info, indent=2, default=str))
        return
    _result(info["doc"])
    objective = info["objective"]
    _result(f"\nTask: {info['task']}    Objective: {objective['name']} "
            f"({'maximised' if objective['direction'] == 'max' else 'minimised'})")
    _result("\nDefaults:")
    for key, value in info["defaults"].items():
        _result(f"  {key}: {value}")
    _result("\nSearch space (`--set NAME=VALUE` pins one; `kerasdl tune` searches them):")
    rows = [(p["name"], p["type"], _domain(p), p.get("default", p.get("value", "")))
            for p in info["search_space"]]
    _result("  " + _table(rows, ("NAME", "TYPE", "RANGE / CHOICES", "DEFAULT"))
            .replace("\n", "\n  "))
    if info["parameters"] is not None:  # read from the docstring, not counted (TF-free)
        _result(f"\nParameters stated by the header: {info['parameters']:,} (on "
                f"{info['defaults'].get('data', 'its default data')}; `kerasdl show "
                f"{shlex.quote(recipe)} --params` builds the default model and counts them)")


@cli.command()
@click.argument("recipe", metavar="RECIPE_OR_FILE", shell_complete=_complete_recipes)
@click.option("--steps", type=click.IntRange(1, 1000), default=2, show_default=True,
              help="Training steps run on the default model.")
@click.option("--data", help="Data to check on instead of the recipe's default data.")
@click.option("--target", help="Column to predict in a CSV file.")
@json_option
def check(recipe, steps, data, target, as_json):
    """Check that a recipe (a name or a .py file) keeps the recipe contract.

    Reads its declarations, builds its default model, trains a few steps through its
    own pipeline, saves and reloads it, compares the search space and calls each hook
    it declares (the recipe contract, installed with the recipes: a failed check prints
    its path).
    Exits 1 when a rule is broken, naming each one; a stale `Parameters:` line in a
    file of your own is a warning.
    """
    registry.recipe_path(recipe)  # an unknown name or a missing file: exit 2, at once
    _start_tensorflow()
    from kerasdl.check import check_recipe

    report = check_recipe(recipe, steps=steps, data=data, target=target)
    if as_json:
        _result(json.dumps(report, indent=2))
    else:
        rows = [(item["check"], "VIOLATED" if not item["passed"] else "warning"
                 if item["message"].startswith("warning: ") else "ok",
                 item["message"].removeprefix("warning: ")) for item in report["checks"]]
        _result(_table(rows, ("CHECK", "RESULT", "DETAIL")))
    for item in report["checks"]:
        if item["passed"] and item["message"].startswith("warning: "):
            click.echo(f"Warning: {item['check']}: {item['message'][len('warning: '):]}",
                       err=True)
    for item in report["violations"]:
        click.echo(f"Violation: {item['check']}: {item['message']}", err=True)
    if report["violations"]:
        click.echo(f"The recipe contract: {registry.contract_path()}", err=True)
        sys.exit(1)


@cli.command()
@click.argument("recipe", required=False, shell_complete=_complete_recipes)
@_data_options
@_settings_options
@click.option("--output", type=click.Path(), help="Run directory (new or empty folder).")
@click.option("--exclude-class", "exclude_classes", multiple=True, metavar="NAME",
              help="Leave a class out of training and validation (anomaly detection); "
              "repeatable.")
@click.option("--resume", type=click.Path(file_okay=False),
              help="Continue a run that was killed or failed, from its last completed epoch "
              "(its settings come from its config.json).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Train as N local worker processes of one MultiWorkerMirroredStrategy "
              "cluster (a demonstration of training across machines).")
@_csv_options
@_device_options
@json_option
def train(recipe, data, target, data_dir, image_size, classes, train_examples, weights, epochs,
          batch_size, assignments, config_file, seed, output, exclude_classes, resume, workers,
          as_json, **device_options):
    """Train RECIPE (a name, or a recipe .py file) into a new run directory; print its path."""
    from kerasdl import hparams
    from kerasdl import settings

    csv_values = _csv_settings(device_options)
    if workers > 1:
        if resume:
            raise UsageError("`--resume` does not take `--workers`: a multi-worker run "
                             "cannot be resumed; train it again.")
        if device_options.get("strategy") not in (None, "auto", "multiworker"):
            raise UsageError(f"`--workers {workers}` trains with `--strategy multiworker`. "
                             f"Received: --strategy {device_options['strategy']}")
        if os.environ.get("KERASDL_WORKER"):  # a worker `--workers` started
            device_options["strategy"] = "multiworker"
        elif recipe:
            if registry.contract_info(recipe)["has_fit"]:
                raise UsageError(f"`--workers` trains recipes that use `model.fit`; {recipe} "
                                 "has its own `fit`. Train it without `--workers`.")
            if output:
                from kerasdl.runs import check_output

                check_output(output)
            from kerasdl import distributed

            with _children_print_results():  # worker 0 prints the run's path
                code = distributed.launch(sys.argv[1:], workers)
            sys.exit(code)
    if resume:
        if recipe or any((data, target, data_dir, image_size, classes, train_examples, weights,
                          epochs,
                          batch_size, assignments, config_file, seed, output,
                          exclude_classes, device_options.get("skip_bad_files"),
                          *csv_values.values())):
            raise UsageError("`--resume RUN_DIR` takes no recipe or settings: the run's "
                             "config.json holds them.")
        from kerasdl.runs import resumable

        resumable(resume)  # before the slow start of TensorFlow
        _start_tensorflow()
        from kerasdl.training import train as train_recipe

        _print_run(train_recipe(None, None, resume=resume), as_json)
        return
    if not recipe:
        raise UsageError("Give a RECIPE to train (see `kerasdl list`), or `--resume RUN_DIR`.")

    info = registry.contract_info(recipe)
    config = settings.read_config(config_file) if config_file else {}
    cli_values = {"data": data, "target": target, "data_dir": data_dir, "epochs": epochs,
                  "image_size": image_size, "classes": classes,
                  "train_examples": train_examples,
                  "weights": weights,
                  "batch_size": batch_size, "seed": seed, "output": output,
                  "exclude_classes": list(exclude_classes) or None,
                  **csv_values,
                  **_device_settings(device_options),
                  "set": hparams.parse_assignments(assignments)}
    resolved = settings.resolve(info["defaults"], config, cli_values)
    settings.check_data(resolved, info)
    if resolved.get("output"):
        from kerasdl.runs import check_output

        check_output(resolved["output"])  # before the slow start of TensorFlow
    _start_tensorflow()
    from kerasdl.training import train as train_recipe

    run_dir = train_recipe(recipe, resolved, command="kerasdl " + " ".join(sys.argv[1:]))
    if run_dir is not None:  # None: a worker of a multi-worker run other than the chief
        _print_run(run_dir, as_json)


@cli.command()
@click.argument("recipe", required=False, shell_complete=_complete_recipes)
@_data_options
@_settings_options
@click.option("--vary", "vary", multiple=True, metavar="NAME=V1,V2,...",
              help="Values to compare of a hyperparameter or of batch_size, epochs, "
              "early_stopping, train_examples, balance, keep_best; repeatable (all combinations).")
@click.option("--preset", type=click.Choice(PRESET_NAMES),
              help="A classic question with its recipe, data and variants (see docs/concepts.md).")
@click.option("--seeds", type=click.IntRange(1, 100), default=1, show_default=True,
              help="Seeds per variant (from --seed on): metrics are mean and spread.")
@click.option("--gradients", is_flag=True, help="Record per-layer gradient norms every epoch "
              "and plot them (vanishing gradients).")
@click.option("--output", type=click.Path(), help="Comparison folder (new or empty).")
@_csv_options
@_device_options
@json_option
def compare(recipe, data, target, data_dir, image_size, classes, train_examples, weights,
            epochs, batch_size, assignments, config_file, seed, vary, preset, seeds, gradients,
            output, as_json, **device_options):
    """Train variants of RECIPE (a name or a .py file) on the same data and seeds.

    Prints the comparison table and the folder's path (last line).
    """
    from kerasdl import compare as comparing
    from kerasdl import hparams
    from kerasdl import settings

    chosen = comparing.PRESETS[preset] if preset else None
    if chosen is not None:
        if recipe and recipe != chosen.recipe:
            raise UsageError(f"Preset {preset!r} compares the {chosen.recipe} recipe; "
                             f"received {recipe!r}.")
        if vary:
            raise UsageError("`--preset` brings its own variants; give --vary or --preset.")
        recipe = chosen.recipe
    if not recipe:
        raise UsageError("Give a RECIPE and --vary NAME=V1,V2,..., or --preset NAME.")
    info = registry.contract_info(recipe)
    if chosen is not None:
        variants = chosen.variants
        defaults = {**info["defaults"], "data": chosen.data or info["defaults"].get("data"),
                    "epochs": chosen.epochs or info["defaults"].get("epochs"),
                    **chosen.extra_settings, "set": dict(chosen.pinned)}
        gradients = gradients or chosen.gradients
    elif vary:
        variants = comparing.parse_vary(vary, recipe)
        defaults = info["defaults"]
    else:
        raise UsageError("`compare` needs --vary NAME=V1,V2,... or --preset NAME.")
    config = settings.read_config(config_file) if config_file else {}
    cli_values = {"data": data, "target": target, "data_dir": data_dir, "epochs": epochs,
                  "image_size": image_size, "classes": classes,
                  "train_examples": train_examples, "weights": weights,
                  "batch_size": batch_size, "seed": seed,
                  **_csv_settings(device_options),
                  **_device_settings(device_options, "compare"),
                  "set": hparams.parse_assignments(assignments)}
    resolved = settings.resolve(defaults, config, cli_values)
    settings.check_data(resolved, info)
    if output:
        from kerasdl.runs import check_output

        check_output(output)
    _start_tensorflow()
    folder, frame = comparing.compare(recipe, resolved, variants, seeds=seeds,
                                      gradients=gradients, output=output,
                                      command="kerasdl " + " ".join(sys.argv[1:]))
    if as_json:
        _result(json.dumps({"folder": str(folder),
                               "variants": json.loads(frame.to_json(orient="records"))}, indent=2))
        return
    rows, headers = comparing.describe(frame)
    _result(_table(rows, headers))
    _result(str(folder))


@cli.command()
@json_option
def info(as_json):
    """Print what TensorFlow sees: versions, devices, GPUs, mixed precision support."""
    _start_tensorflow()
    from kerasdl.devices import info as device_info

    found = device_info()
    if as_json:
        _result(json.dumps(found, indent=2))
        return
    for key, value in found.items():
        if key == "physical_devices":
            value = ", ".join(f"{d['name']} ({d['type']})" for d in value)
        elif key in ("logical_devices",):
            value = ", ".join(value)
        elif key == "gpus":
            value = "; ".join(", ".join(f"{k}: {v}" for k, v in gpu.items()) for gpu in value) or "none"
        _result(f"{key:17} {value}")


@cli.command()
@click.argument("recipe", shell_complete=_complete_recipes)
@_data_options
@click.option("--batch-size", type=int, help="Batch size (default: the recipe's).")
@click.option("--steps", type=click.IntRange(1, 100_000), default=50, show_default=True,
              help="Training steps timed (after as many to warm up).")
@click.option("--repeats", type=click.IntRange(1, 100), default=3, show_default=True,
              help="Times the steps are timed; figures are the median.")
@click.option("--set", "assignments", multiple=True, metavar="NAME=VALUE",
              help="Pin a hyperparameter; repeatable.")
@_device_options
@json_option
def bench(recipe, data, target, data_dir, batch_size, steps, repeats, assignments, as_json,
          **device_options):
    """Measure RECIPE (a name or a .py file): samples/s, step time, pipeline, FLOPs, utilisation."""
    from kerasdl import hparams
    from kerasdl import settings

    info_ = registry.contract_info(recipe)
    resolved = settings.resolve(info_["defaults"], {}, {
        "data": data, "target": target, "data_dir": data_dir, "batch_size": batch_size,
        **_device_settings(device_options, "bench"),
        "set": hparams.parse_assignments(assignments)})
    settings.check_data(resolved, info_)
    if info_["pretrained"] and resolved.get("weights") == "imagenet":
        resolved["weights"] = "none"  # speed does not depend on the weights' values
    _start_tensorflow()
    from kerasdl.bench import bench as run_bench

    figures = run_bench(recipe, resolved, steps=steps, repeats=repeats)
    if as_json:
        _result(json.dumps(figures, indent=2))
        return
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
    _result(_table(rows, ("RECIPE " + recipe, "")))


@cli.command()
@click.argument("recipe", shell_complete=_complete_recipes)
@_data_options
@click.option("--tuner", type=click.Choice(["random", "bayesian", "hyperband", "grid"]),
              default="random", show_default=True, help="Keras Tuner search algorithm.")
@click.option("--max-trials", type=int, default=10, show_default=True,
              help="Trials to run (hyperband: set by --epochs and its factor 3 instead).")
@_settings_options
@click.option("--objective", multiple=True, metavar="NAME[:min|max]",
              help="Metric to optimise; default: the recipe's. Repeat it for a Pareto front: "
              "the first drives the search, the others (a logged metric, params or latency) "
              "are recorded per trial and pareto.csv lists the non-dominated trials.")
@click.option("--output", type=click.Path(), help="Search directory "
              "(default searches/RECIPE-TUNER); running again continues the search.")
@click.option("--overwrite", is_flag=True, help="Delete the search in --output and start afresh.")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True,
              help="Run trials in N worker processes (Keras Tuner's chief/worker mode).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address the chief serves on: its gRPC has no authentication.")
@click.option("--port", type=click.IntRange(1, 65535), help="Chief port (default: a free one).")
@click.option("--role", type=click.Choice(["chief", "worker"]),
              help="One process of a search over several machines (see README).")
@click.option("--worker-id", help="This worker's unique name, with --role worker.")
@click.option("--no-retrain", is_flag=True, help="Skip retraining the best configuration.")
@click.option("--prune", is_flag=True, help="Stop a trial whose best objective so far is worse "
              "than the median of the completed trials at the same epoch (Optuna's "
              "MedianPruner rule); pruned trials stay in the results as PRUNED.")
@click.option("--prune-warmup-epochs", type=click.IntRange(min=0), default=WARMUP_EPOCHS,
              show_default=True, help="With --prune: epochs every trial runs before it can "
              "be stopped.")
@click.option("--prune-startup-trials", type=click.IntRange(min=0), default=STARTUP_TRIALS,
              show_default=True, help="With --prune: completed trials needed at an epoch "
              "before a trial is stopped there.")
@click.option("--warm-start", type=click.Path(), metavar="SEARCH_DIR",
              help="Start from the finished trials of an earlier search of the same recipe "
              "and data (imported, not retrained; --max-trials counts new trials).")
@_csv_options
@_device_options
@json_option
def tune(recipe, data, target, data_dir, tuner, max_trials, image_size, classes, train_examples,
         weights,
         epochs, batch_size, assignments,
         config_file, seed, objective, output, overwrite, workers, host, port, role, worker_id,
         no_retrain, prune, prune_warmup_epochs, prune_startup_trials, warm_start, as_json,
         **device_options):
    """Search RECIPE's (a name or a .py file) hyperparameters; print the search directory.

    Runs or continues the search, writes results.csv, best_hyperparameters.json and
    plots, and retrains the best configuration on train + validation into best/.
    """
    from kerasdl import hparams
    from kerasdl import settings

    info = registry.contract_info(recipe)
    config = settings.read_config(config_file) if config_file else {}
    cli_values = {"data": data, "target": target, "data_dir": data_dir, "epochs": epochs,
                  "image_size": image_size, "classes": classes,
                  "train_examples": train_examples,
                  "weights": weights,
                  "batch_size": batch_size, "seed": seed,
                  **_csv_settings(device_options),
                  **_device_settings(device_options, "tune"),
                  "set": hparams.parse_assignments(assignments)}
    resolved = settings.resolve(info["defaults"], config, cli_values)
    settings.check_data(resolved, info)
    given = click.get_current_context().get_parameter_source
    for name in ("prune_warmup_epochs", "prune_startup_trials"):
        if not prune and given(name) == click.core.ParameterSource.COMMANDLINE:
            raise UsageError(f"`--{name.replace('_', '-')}` applies with --prune; add --prune.")
    try:
        pareto.parse_objectives(objective)  # refused before TensorFlow starts
    except pareto.ObjectiveError as error:
        raise UsageError(str(error)) from None
    if warm_start is not None:  # a mismatched earlier search is refused before TensorFlow
        from kerasdl import warmstart

        objective_name = (objective[0] if objective else info["objective"]["name"]) \
            .partition(":")[0]
        warmstart.read_source(warm_start, recipe, resolved, tuner, objective_name=objective_name,
                              directory=output or Path("searches") / f"{recipe}-{tuner}")
    _start_tensorflow()
    from kerasdl.tuning import tune as run_tune

    directory = run_tune(recipe, resolved, tuner=tuner, max_trials=max_trials,
                         objective=list(objective), output=output, overwrite=overwrite,
                         workers=workers, host=host, port=port, retrain=not no_retrain,
                         role=role, worker_id=worker_id, warm_start=warm_start,
                         prune={"warmup_epochs": prune_warmup_epochs,
                                "startup_trials": prune_startup_trials} if prune else None)
    if not as_json:
        _result(str(directory))
        return
    found = {"directory": str(directory)}
    for key, path in (("best", directory / "best_hyperparameters.json"),
                      ("best_run", directory / "best" / "metrics.json")):
        if path.is_file():
            found[key] = _read_json(path) if key == "best" else {
                "run": str(path.parent), "metrics": _read_json(path)}
    _result(json.dumps(found, indent=2))


@cli.command()
@click.argument("run", type=click.Path())
@_data_options
@click.option("--split", type=click.Choice(["train", "validation", "test", "all"]),
              help="Which split to score; default: test for the run's data, all for --data.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Batch size.")
@click.option("--run", "artifact_run", type=click.Path(file_okay=False),
              help="Score RUN as an exported artifact (.tflite, .onnx, SavedModel folder, "
              ".keras) in its own runtime, with this run's data and metrics (default: the "
              "run folder the artifact lies in).")
@click.option("--unsafe", is_flag=True, help="Allow models that carry Python code (Lambda "
              "layers) and legacy .h5 files: only for files you trust.")
@click.option("--sep", help=SEP_HELP)
@json_option
def evaluate(run, data, target, data_dir, skip_bad_files, split, batch_size, artifact_run,
             unsafe, sep, as_json):
    """Score a run directory or .keras model on the test split or given data.

    Given an exported artifact (.tflite, .onnx, a SavedModel folder, or a .keras file
    with --run), score it in its own runtime on its run's test split.
    """
    _existing(run, "Run folder, model file or artifact")
    _existing(artifact_run, "Run folder")
    if data is not None:
        from kerasdl import settings

        sep = settings.normalise_sep(sep)
        settings.check_data({"data": data, "target": target, "sep": sep})
        _check_csv_input(artifact_run or run, data, sep, target)
    elif sep is not None:
        raise UsageError("`--sep` says how to read a CSV file given with --data; the run's "
                         "own data is read the way it was in training. Give --data FILE.csv, "
                         "or leave --sep out.")
    _start_tensorflow()
    from kerasdl.evaluation import evaluate as evaluate_run

    if artifact_run or Path(run).suffix in (".tflite", ".onnx") \
            or (Path(run) / "saved_model.pb").is_file():
        from kerasdl.artifacts import evaluate_artifact

        metrics = evaluate_artifact(run, artifact_run, data=data, target=target,
                                    data_dir=data_dir, split=split, batch_size=batch_size,
                                    unsafe=unsafe, skip_bad_files=skip_bad_files, sep=sep)
    else:
        metrics = evaluate_run(run, data=data, target=target, data_dir=data_dir, split=split,
                               batch_size=batch_size, unsafe=unsafe,
                               skip_bad_files=skip_bad_files, sep=sep)
    if as_json:
        _result(json.dumps(metrics, indent=2))
        return
    rows = [(name, f"{value:.4f}" if isinstance(value, float) else value)
            for name, value in metrics.items()]
    _result(_table(rows, ("METRIC", "VALUE")))


def _run_spec(run):
    """The spec in a run folder's config.json; {} for a model file or a folder without one."""
    config = Path(run) / "config.json"
    return (_read_json(config).get("spec") or {}) if config.is_file() else {}


CSV_SUFFIXES = (".csv", ".tsv", ".txt")


def _check_csv_input(run, input_path, sep, target=None):
    """A CSV input against run `run`'s columns, before TensorFlow starts (exit 2).

    `sep` (normalised; None: the run's recorded separator) must go with a CSV file, and
    a header that reads as one column under it is refused with the `--sep` to pass.
    """
    from kerasdl import settings

    path = Path(input_path)
    if "://" in str(input_path) or not path.exists():
        return
    if not (path.is_file() and path.suffix.lower() in CSV_SUFFIXES):
        if sep is not None:
            raise UsageError(f"`--sep` says how to read a CSV file, but {str(input_path)!r} "
                             f"is {'a folder' if path.is_dir() else 'not a .csv file'}. "
                             "Leave --sep out.")
        return
    spec = _run_spec(run) if Path(run).is_dir() else {}
    wanted = []
    if spec.get("columns") or spec.get("feature_names"):
        from kerasdl.data.tabular import schema_columns

        wanted = list(schema_columns(spec))
    target = target or spec.get("target")
    if target is not None and str(target) not in wanted:
        wanted.append(str(target))
    settings.check_csv_input(path, sep or (spec.get("csv") or {}).get("sep"), wanted)


def _check_id_column(run, input_path, id_column, sep=None):
    """`--id-column` against the input's header, before TensorFlow starts (exit 2)."""
    from kerasdl import settings

    if not Path(input_path).is_file():
        raise UsageError("`--id-column` names a column of a CSV file; "
                         f"{str(input_path)!r} is a folder.")
    spec = _run_spec(run)
    columns = settings.csv_header(input_path, sep or (spec.get("csv") or {}).get("sep"))
    if columns is not None and id_column not in columns:
        raise UsageError(f"`--id-column` {id_column!r} is not a column of {str(input_path)!r}. "
                         f"Columns: {', '.join(columns)}")


@cli.command()
@click.argument("run", type=click.Path())
@click.argument("input_path", metavar="INPUT", type=click.Path())
@click.option("--output", type=click.Path(dir_okay=False), help="Write the CSV here, not stdout.")
@click.option("--force", is_flag=True, help="Overwrite an existing --output file.")
@click.option("--skip-bad-files", is_flag=True, help="Leave out image files that cannot be "
              "decoded (counted on stderr) instead of stopping with the list of them.")
@click.option("--id-column", metavar="COLUMN", help="Name each output row by this CSV "
              "column's value (an ID the model does not use) instead of its row number.")
@click.option("--unsafe", is_flag=True, help="Allow models that carry Python code (Lambda "
              "layers) and legacy .h5 files: only for files you trust.")
@click.option("--sep", help=SEP_HELP)
def predict(run, input_path, output, force, skip_bad_files, id_column, unsafe, sep):
    """Predict CSV rows, an image file or an image folder with a run or model (CSV out)."""
    from kerasdl import settings

    _existing(run, "Run folder or model file")
    _existing(input_path, "Input")
    if output and Path(output).exists() and not force:
        raise UsageError(f"`--output` {output!r} exists; pass --force to overwrite it.")
    sep = settings.normalise_sep(sep)
    _check_csv_input(run, input_path, sep)
    if id_column is not None:
        _check_id_column(run, input_path, id_column, sep)
    _start_tensorflow()
    from kerasdl import runs
    from kerasdl.evaluation import predict_chunks

    # Rows are written as they come (a CSV file a chunk at a time, images a batch at a
    # time); --output is written to a temporary file renamed at the end, so a failure
    # leaves nothing.
    chunks = predict_chunks(run, input_path, unsafe=unsafe, skip_bad_files=skip_bad_files,
                            id_column=id_column, sep=sep)
    if output:
        count = 0

        def write(tmp):
            nonlocal count
            with open(tmp, "w", encoding="utf-8", newline="") as handle:
                for index, frame in enumerate(chunks):
                    frame.to_csv(handle, index=False, header=index == 0)
                    count += len(frame)

        runs.atomic_write(output, write)
        click.echo(f"Wrote {count} predictions to {output}", err=True)
    else:
        for index, frame in enumerate(chunks):
            _result(frame.to_csv(index=False, header=index == 0), nl=False)


@cli.command()
@click.argument("run", type=click.Path())
@click.option("--num", "num_samples", type=click.IntRange(min=1), default=64, show_default=True,
              help="How many images to generate.")
@click.option("--output", type=click.Path(file_okay=False), required=True,
              help="Folder for the PNG files (new or empty).")
@click.option("--seed", type=int, help="Seed of the codes: the same seed gives the same images.")
@click.option("--force", is_flag=True, help="Write into a folder that holds files.")
@click.option("--unsafe", is_flag=True, help="Allow models that carry Python code (Lambda "
              "layers) and legacy .h5 files: only for files you trust.")
def generate(run, num_samples, output, seed, force, unsafe):
    """Generate images with a GAN run and write them as PNG files."""
    _existing(run, "Run folder or model file")
    _start_tensorflow()
    from kerasdl.evaluation import generate as generate_images

    paths = generate_images(run, num_samples, output, seed=seed, force=force, unsafe=unsafe)
    click.echo(f"Wrote {len(paths)} images to {output}", err=True)
    _result(str(output))


@cli.command()
@click.argument("run", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["keras", "saved_model", "tflite", "onnx",
                                                     "base"]),
              default="saved_model", show_default=True, help="Artifact format; base: the "
              "weights of a vgg16 or mobilenet run's base, for `train --weights FILE`.")
@click.option("--output", type=click.Path(), help="Where to write (default RUN/export/...).")
@click.option("--quantize", type=click.Choice(["dynamic", "float16", "int8"]),
              help="Post-training quantization: tflite takes dynamic (int8 weights), float16 "
              "or int8 (full-integer, calibrated on the run's training split); keras takes "
              "int8 (Keras' model.quantize: Dense, EinsumDense, Embedding layers).")
@click.option("--force", is_flag=True, help="Replace an existing artifact.")
@click.option("--unsafe", is_flag=True, help="Allow models that carry Python code (Lambda "
              "layers) and legacy .h5 files: only for files you trust.")
@json_option
def export(run, fmt, output, quantize, force, unsafe, as_json):
    """Export a run's model and check it against Keras in the format's runtime.

    Reports the artifact's size; a quantized export also reports the float model's
    size and both models' test metrics, each scored in its own runtime.
    """
    _existing(run, "Run folder or model file")
    _check_export_output(output, fmt)
    if output and Path(output).exists() and not force:
        raise UsageError(f"{output!r} exists; pass --force to replace it.")
    _start_tensorflow()
    from kerasdl.export import export as export_model

    artifact, check = export_model(run, fmt, output=output, force=force, unsafe=unsafe,
                                   quantize=quantize)
    quantized = check.get("quantization")
    if quantized:
        click.echo(f"Quantized {quantize}: {check['bytes']:,} bytes, "
                   f"{quantized['size_ratio']:.2f}x the float model's "
                   f"{quantized['float_bytes']:,}; largest difference from Keras on "
                   f"{check['examples']} test inputs {check['max_abs_diff']:.3g}", err=True)
        if "int8_layers" in quantized:
            click.echo(f"Keras quantized {len(quantized['int8_layers'])} layer(s) to int8: "
                       f"{', '.join(quantized['int8_layers']) or 'none'} (it covers Dense, "
                       "EinsumDense and Embedding only)", err=True)
        if quantized["metrics"]:
            shared = [k for k in quantized["metrics"] if k in quantized["float_metrics"]
                      and isinstance(quantized["metrics"][k], float)]
            click.echo("Test split: " + ", ".join(
                f"{k} {quantized['metrics'][k]:.4f} (float {quantized['float_metrics'][k]:.4f})"
                for k in shared), err=True)
        else:
            click.echo("Test metrics: not measured (the recipe scores itself in its own "
                       "test_step).", err=True)
    else:
        click.echo(f"Checked in {check['runtime']} on {check['examples']} test inputs: largest "
                   f"difference {check['max_abs_diff']:.3g} (tolerance atol {check['atol']}, "
                   f"rtol {check['rtol']}): passed; {check['bytes']:,} bytes", err=True)
    _result(json.dumps(check, indent=2) if as_json else str(artifact))


# What an export's --output must end with, per format (saved_model: a folder, no suffix).
EXPORT_SUFFIXES = {"keras": ".keras", "tflite": ".tflite", "onnx": ".onnx",
                   "base": ".weights.h5", "saved_model": ""}


def _check_export_output(output, fmt):
    if not output:
        return
    name = Path(output).name
    wanted = EXPORT_SUFFIXES[fmt]
    known = [suffix for suffix in EXPORT_SUFFIXES.values() if suffix and name.endswith(suffix)]
    if wanted and not name.endswith(wanted):
        raise UsageError(f"`--output` for --format {fmt} must end with {wanted}. "
                         f"Received: --output {output}")
    if not wanted and known:
        formats = [name for name, suffix in EXPORT_SUFFIXES.items() if suffix == known[-1]]
        raise UsageError(f"`--output` for --format saved_model is a folder, not a {known[-1]} "
                         f"file. Received: --output {output} (for that file give --format "
                         f"{formats[0]})")


def _print_url(url):
    _result(url)
    (_RESULTS or sys.stdout).flush()


@cli.command()
@click.argument("run", metavar="RUN_OR_ARTIFACT", type=click.Path())
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (the server has no authentication).")
@click.option("--port", type=click.IntRange(0, 65535), default=8501, show_default=True,
              help="Port to listen on; 0 picks a free one.")
@click.option("--name", help="Model name in the URLs (default: the run's recipe).")
@click.option("--run", "artifact_run", type=click.Path(file_okay=False),
              help="The run an artifact was exported from, for its input schema and class "
              "names (default: the run folder the artifact lies in).")
@click.option("--max-batch", type=click.IntRange(min=1), default=64, show_default=True,
              help="Most examples run as one batch.")
@click.option("--batch-window-ms", type=click.FloatRange(min=0), default=2.0,
              show_default=True, help="How long the first request of a batch waits for others.")
@click.option("--max-body-mb", type=click.FloatRange(min=0, min_open=True), default=8.0,
              show_default=True, help="Largest request body accepted (413 above it).")
@click.option("--unsafe", is_flag=True, help="Allow models that carry Python code (Lambda "
              "layers) and legacy .h5 files: only for files you trust.")
def serve(run, host, port, name, artifact_run, max_batch, batch_window_ms, max_body_mb, unsafe):
    """Serve a run or exported artifact over HTTP (TensorFlow Serving's REST API).

    Prints the model's URL, then answers GET URL (status), GET URL/metadata and
    POST URL:predict with {"instances": [...]} until SIGTERM or Ctrl-C; requests in
    flight then finish.
    """
    _existing(run, "Run folder or artifact")
    _existing(artifact_run, "Run folder")
    _start_tensorflow()
    from kerasdl.serve import serve as run_server

    run_server(run, host=host, port=port, name=name, run=artifact_run, max_batch=max_batch,
               window_ms=batch_window_ms, max_body_mb=max_body_mb, unsafe=unsafe,
               on_ready=_print_url)


@cli.command()
@click.argument("recipe", shell_complete=_complete_recipes)
@click.argument("dest", type=click.Path())
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def copy(recipe, dest, force):
    """Copy RECIPE's standalone file to DEST: a .py file name, or a folder (created)."""
    from kerasdl import runs

    if registry.is_file_reference(recipe):
        names = ", ".join(registry.list_recipes())
        raise UsageError(f"`copy` copies a shipped recipe by name ({names}); {recipe!r} is "
                         "a path, not a name (a file of your own: copy it with your shell).")
    source = registry.recipe_source(recipe)  # a packaged recipe's name, never a path
    target = Path(dest)
    # A destination that is not a .py file is a folder, created when missing.
    if target.is_dir() or dest.endswith(("/", os.sep)) or target.suffix != ".py":
        if target.exists() and not target.is_dir():
            raise UsageError(f"{dest!r} is a file without a .py suffix; give a folder or a "
                             ".py file name.")
        target = target / f"{recipe}.py"
    if target.is_symlink():
        raise KerasdlError(f"{str(target)!r} is a symbolic link; refusing to write through it.")
    if target.parent.exists() and target.parent.resolve() != target.resolve().parent:
        raise KerasdlError(f"{str(target)!r} resolves outside {str(target.parent)!r}; refusing.")
    if target.exists() and not force:
        raise UsageError(f"{str(target)!r} exists; pass --force to overwrite it.")
    if target.is_dir():
        raise KerasdlError(f"{str(target)!r} is a folder; give a file name or another folder.")
    runs.write_text(target, source)
    _result(str(target))
    click.echo(f"Edit it, then check it: kerasdl check {_as_path(target)}. The recipe contract "
               f"it keeps: {registry.contract_path()}", err=True)


def _as_path(target):
    """How to name a copied recipe file on the command line: with a `/`, so it is a file."""
    text = str(target)
    return shlex.quote(text if "/" in text or os.sep in text else f"./{text}")


def main():
    """Entry point of the `kerasdl` console script."""
    if os.environ.get("KERASDL_PARENT_PID"):  # a worker of `--workers`: dies with its launcher
        from kerasdl.supervisor import child_setup

        child_setup()
    if os.environ.get("TF_CONFIG"):  # a multi-worker process: SIGTERM while it waits for peers
        from kerasdl.distributed import import_tensorflow_with_sigterm_blocked

        import_tensorflow_with_sigterm_blocked()
    _PROCESS_ENTRY["hard_exit"] = True
    sys.unraisablehook = _quiet_disk_full_cleanup
    sys.excepthook = _quiet_disk_full_traceback
    cli()
