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
unsafe_option = click.option("--unsafe", is_flag=True, help="Allow models that carry Python "
                             "code (Lambda layers) and legacy .h5 files: only for files you "
                             "trust.")
skip_bad_files_option = click.option("--skip-bad-files", is_flag=True, default=None,
                                     help="Leave out image files that cannot be decoded "
                                     "(counted on stderr) instead of stopping with the list "
                                     "of them.")
target_option = click.option("--target", help="Column to predict in a CSV file.")
set_option = click.option("--set", "assignments", multiple=True, metavar="NAME=VALUE",
                          help="Pin a hyperparameter of the search space; repeatable.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


def force_option(help):
    """`--force`, with what it overwrites in this command."""
    return click.option("--force", is_flag=True, help=help)


def sep_option(default):
    """`--sep`, the field separator of a CSV file; `default` says what it is when left out."""
    return click.option("--sep", help="Field separator of the CSV file: one character, such "
                        f"as ';', '|' or '\\t' (tab). Default: {default}.")


def _data_options(command):
    for option in reversed([
        click.option("--data", help=f"Embedded data set ({', '.join(registry.data_sets())}), "
                     "tfds:NAME, a CSV file or an image folder (one sub-folder per class)."),
        target_option,
        click.option("--data-dir", type=click.Path(file_okay=False),
                     help="Folder of TensorFlow Datasets data (for tfds:NAME)."),
        skip_bad_files_option,
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
        set_option,
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
        sep_option("','"),
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


# The names of `kerasdl compare --preset` (kept here so that --help imports no TensorFlow).
PRESET_NAMES = ["activations", "optimizers", "regularization", "initializers", "batch_size",
                "learning_rate", "loss", "imbalance"]


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
    from kerasdl import tables

    if runs_root is not None:
        _result(tables.runs(runs_root, as_json))
        return
    _result(tables.recipes(as_json))


def _print_run(run_dir, as_json):
    """Prints a finished run: its path, or with `--json` its path and metrics."""
    from kerasdl import tables

    _result(tables.run_result(run_dir) if as_json else str(run_dir))


@cli.command()
@click.argument("recipe", shell_complete=_complete_recipes)
@click.option("--params", is_flag=True, help="Each layer's weights and biases with the formula "
              "that gives the count (builds the default model: imports TensorFlow).")
@json_option
def show(recipe, params, as_json):
    """Show a recipe's (a name or a .py file) header, defaults, search space and parameters.

    Given a search directory (from `kerasdl tune`), show its best trials.
    """
    from kerasdl import tables

    if (Path(recipe) / "search.json").is_file():
        _result(tables.search(recipe, as_json))
        return
    if params:
        _start_tensorflow()
        _result(tables.parameters(recipe, as_json))
        return
    _result(tables.recipe(recipe, as_json))


@cli.command()
@click.argument("recipe", metavar="RECIPE_OR_FILE", shell_complete=_complete_recipes)
@click.option("--steps", type=click.IntRange(1, 1000), default=2, show_default=True,
              help="Training steps run on the default model.")
@click.option("--data", help="Data to check on instead of the recipe's default data.")
@target_option
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
    from kerasdl import tables

    registry.recipe_path(recipe)  # an unknown name or a missing file: exit 2, at once
    _start_tensorflow()
    from kerasdl.check import check_recipe

    report = check_recipe(recipe, steps=steps, data=data, target=target)
    _result(tables.contract_checks(report, as_json))
    for line in tables.contract_notes(report):
        click.echo(line, err=True)
    if report["violations"]:
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
def train(recipe, resume, workers, as_json, **options):
    """Train RECIPE (a name, or a recipe .py file) into a new run directory; print its path."""
    from kerasdl import settings

    if workers > 1:
        from kerasdl import distributed

        role = distributed.workers_role(workers, recipe, options["strategy"], resume,
                                        options["output"])
        if role == "worker":
            options["strategy"] = "multiworker"
        elif role == "launcher":
            with _children_print_results():  # worker 0 prints the run's path
                sys.exit(distributed.launch(sys.argv[1:], workers))
    if resume:
        settings.check_resume(recipe, options)
        from kerasdl.runs import resumable

        resumable(resume)  # before the slow start of TensorFlow
        _start_tensorflow()
        from kerasdl.training import train as train_recipe

        _print_run(train_recipe(None, None, resume=resume), as_json)
        return
    if not recipe:
        raise UsageError("Give a RECIPE to train (see `kerasdl list`), or `--resume RUN_DIR`.")
    info = registry.contract_info(recipe)
    resolved = settings.from_options(info["defaults"], options, "train", info)
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
def compare(recipe, vary, preset, seeds, gradients, output, as_json, **options):
    """Train variants of RECIPE (a name or a .py file) on the same data and seeds.

    Prints the comparison table and the folder's path (last line).
    """
    from kerasdl import compare as comparing
    from kerasdl import settings
    from kerasdl.tables import table

    recipe, defaults, variants, preset_gradients = comparing.plan(recipe, vary, preset)
    resolved = settings.from_options(defaults, options, "compare",
                                     registry.contract_info(recipe))
    if output:
        from kerasdl.runs import check_output

        check_output(output)
    _start_tensorflow()
    folder, frame = comparing.compare(recipe, resolved, variants, seeds=seeds,
                                      gradients=gradients or preset_gradients, output=output,
                                      command="kerasdl " + " ".join(sys.argv[1:]))
    if as_json:
        _result(json.dumps({"folder": str(folder),
                            "variants": json.loads(frame.to_json(orient="records"))}, indent=2))
        return
    _result(table(*comparing.describe(frame)))
    _result(str(folder))


@cli.command()
@json_option
def info(as_json):
    """Print what TensorFlow sees: versions, devices, GPUs, mixed precision support."""
    _start_tensorflow()
    from kerasdl import tables
    from kerasdl.devices import info as device_info

    _result(tables.devices(device_info(), as_json))


@cli.command()
@click.argument("recipe", shell_complete=_complete_recipes)
@_data_options
@click.option("--batch-size", type=int, help="Batch size (default: the recipe's).")
@click.option("--steps", type=click.IntRange(1, 100_000), default=50, show_default=True,
              help="Training steps timed (after as many to warm up).")
@click.option("--repeats", type=click.IntRange(1, 100), default=3, show_default=True,
              help="Times the steps are timed; figures are the median.")
@set_option
@_device_options
@json_option
def bench(recipe, steps, repeats, as_json, **options):
    """Measure RECIPE (a name or a .py file): samples/s, step time, pipeline, FLOPs, utilisation."""
    from kerasdl import settings
    from kerasdl import tables

    info_ = registry.contract_info(recipe)
    resolved = settings.from_options(info_["defaults"], options, "bench", info_)
    _start_tensorflow()
    from kerasdl.bench import bench as run_bench

    figures = run_bench(recipe, resolved, steps=steps, repeats=repeats)
    _result(tables.bench(recipe, figures, as_json))


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
def tune(recipe, tuner, max_trials, objective, output, overwrite, workers, host, port, role,
         worker_id, no_retrain, prune, prune_warmup_epochs, prune_startup_trials, warm_start,
         as_json, **options):
    """Search RECIPE's (a name or a .py file) hyperparameters; print the search directory.

    Runs or continues the search, writes results.csv, best_hyperparameters.json and
    plots, and retrains the best configuration on train + validation into best/.
    """
    from kerasdl import settings
    from kerasdl import tables

    info = registry.contract_info(recipe)
    resolved = settings.from_options(info["defaults"], options, "tune", info)
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
    _result(tables.search_result(directory) if as_json else str(directory))


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
@unsafe_option
@sep_option("the separator the run was trained with")
@json_option
def evaluate(run, data, target, data_dir, skip_bad_files, split, batch_size, artifact_run,
             unsafe, sep, as_json):
    """Score a run directory or .keras model on the test split or given data.

    Given an exported artifact (.tflite, .onnx, a SavedModel folder, or a .keras file
    with --run), score it in its own runtime on its run's test split.
    """
    from kerasdl import settings
    from kerasdl import tables

    _existing(run, "Run folder, model file or artifact")
    _existing(artifact_run, "Run folder")
    sep = settings.check_scoring_data(artifact_run or run, data, target, sep)
    _start_tensorflow()
    from kerasdl.artifacts import score

    metrics = score(run, artifact_run, data=data, target=target, data_dir=data_dir,
                    split=split, batch_size=batch_size, unsafe=unsafe,
                    skip_bad_files=skip_bad_files, sep=sep)
    _result(tables.metrics(metrics, as_json))


@cli.command()
@click.argument("run", type=click.Path())
@click.argument("input_path", metavar="INPUT", type=click.Path())
@click.option("--output", type=click.Path(dir_okay=False), help="Write the CSV here, not stdout.")
@force_option("Overwrite an existing --output file.")
@skip_bad_files_option
@click.option("--id-column", metavar="COLUMN", help="Name each output row by this CSV "
              "column's value (an ID the model does not use) instead of its row number.")
@unsafe_option
@sep_option("the separator the run was trained with")
def predict(run, input_path, output, force, skip_bad_files, id_column, unsafe, sep):
    """Predict CSV rows, an image file or an image folder with a run or model (CSV out)."""
    from kerasdl import settings

    _existing(run, "Run folder or model file")
    _existing(input_path, "Input")
    if output and Path(output).exists() and not force:
        raise UsageError(f"`--output` {output!r} exists; pass --force to overwrite it.")
    sep = settings.check_run_input(run, input_path, sep, id_column=id_column)
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
@force_option("Write into a folder that holds files.")
@unsafe_option
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
@force_option("Replace an existing artifact.")
@unsafe_option
@json_option
def export(run, fmt, output, quantize, force, unsafe, as_json):
    """Export a run's model and check it against Keras in the format's runtime.

    Reports the artifact's size; a quantized export also reports the float model's
    size and both models' test metrics, each scored in its own runtime.
    """
    from kerasdl import tables
    from kerasdl.artifacts import check_export_output

    _existing(run, "Run folder or model file")
    check_export_output(output, fmt, force)
    _start_tensorflow()
    from kerasdl.export import export as export_model

    artifact, check = export_model(run, fmt, output=output, force=force, unsafe=unsafe,
                                   quantize=quantize)
    for line in tables.export_notes(check, quantize):
        click.echo(line, err=True)
    _result(json.dumps(check, indent=2) if as_json else str(artifact))


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
@unsafe_option
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
@force_option("Overwrite an existing file.")
def copy(recipe, dest, force):
    """Copy RECIPE's standalone file to DEST: a .py file name, or a folder (created)."""
    target = registry.copy_recipe(recipe, dest, force)
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
