"""Issue 19's searches: pruning, warm start, bounded disk, TensorBoard HParams, results.

Small real searches of the perceptron on XOR (seconds per trial). The pruning searches
are grid searches over the initializer alone, everything else pinned: the first two
trials (glorot, he) learn XOR, the last (`zeros`: every hidden unit the same, for ever)
stays near 0.5 accuracy for any seed, so it must be stopped.
"""

import json
import subprocess
import sys

import pandas as pd
import pytest

from conftest import run_kerasdl
from kerasdl.pruning import should_prune

PINNED = ["--set", "loss=sparse_categorical_crossentropy", "--set", "hidden_layers=1",
          "--set", "units=16", "--set", "activation=tanh", "--set", "regularization=none",
          "--set", "regularization_strength=0.001", "--set", "dropout_rate=0.0",
          "--set", "batch_norm=false", "--set", "input_noise=0.0", "--set", "optimizer=adam",
          "--set", "learning_rate=0.05"]
GRID = ["perceptron", "--tuner", "grid", "--max-trials", "4", "--epochs", "6", *PINNED,
        "--no-retrain"]
PRUNE = ["--prune", "--prune-warmup-epochs", "3", "--prune-startup-trials", "2"]


def _tune(out, *args):
    done = run_kerasdl("tune", *args, "--output", out, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == str(out)
    return pd.read_csv(out / "results.csv", dtype={"trial_id": str})


def _records(out):
    return {p.parent.name[len("trial_"):]: json.loads(p.read_text())
            for p in sorted((out / "tuner").glob("trial_*/kerasdl_trial.json"))}


# Module fixtures run once per test process: the tests of `grids` (two tune runs) share
# the xdist group "grids", so one process runs them and the searches run once.
@pytest.fixture(scope="module")
def grids(tmp_path_factory):
    """The same grid search with and without --prune."""
    root = tmp_path_factory.mktemp("grids")
    pruned = _tune(root / "pruned", *GRID, *PRUNE)
    unpruned = _tune(root / "unpruned", *GRID)
    return root / "pruned", pruned, root / "unpruned", unpruned


@pytest.mark.xdist_group("grids")
def test_prune_stops_the_stuck_trial_and_keeps_it_in_the_results(grids):
    out, pruned, _, unpruned = grids
    by_init = pruned.set_index("initializer")
    assert by_init.loc["zeros", "status"] == "PRUNED"
    assert by_init.loc["zeros", "epochs"] == 4  # 3 warm-up epochs, stopped after the 4th
    assert pd.notna(by_init.loc["zeros", "val_accuracy"])
    for init in ("glorot_uniform", "he_normal"):  # the start-up trials always run through
        assert by_init.loc[init, "status"] == "COMPLETED" and by_init.loc[init, "epochs"] == 6

    # Every decision follows the median rule on the recorded curves.
    records = _records(out)
    finished = []
    for trial_id in sorted(records, key=int):
        record = records[trial_id]
        curve = {int(k): v for k, v in record["curve"].items()}
        assert len(curve) == record["epochs"]
        decisions = [should_prune(curve, finished, epoch, "max", 3, 2, final_epoch=6)
                     for epoch in curve]
        if record["status"] == "pruned":
            assert decisions[-1] and not any(decisions[:-1]), (trial_id, curve, finished)
        else:
            assert record["status"] == "completed" and not any(decisions), (trial_id, curve)
            finished.append(curve)

    # Without --prune: every trial runs every epoch, the same trials score the same.
    assert (unpruned["status"] == "COMPLETED").all() and (unpruned["epochs"] == 6).all()
    assert pruned["epochs"].sum() < unpruned["epochs"].sum()
    best = pruned[pruned["status"] == "COMPLETED"]["val_accuracy"].max()
    assert best == pytest.approx(unpruned["val_accuracy"].max(), abs=1e-3)
    # A pruned trial is never the best, even had it scored higher.
    chosen = json.loads((out / "best_hyperparameters.json").read_text())
    assert chosen["hyperparameters"]["initializer"] in ("glorot_uniform", "he_normal",
                                                        "random_normal")
    assert chosen["trial_id"] in set(pruned[pruned["status"] == "COMPLETED"]["trial_id"])


@pytest.mark.xdist_group("grids")
def test_results_have_every_hyperparameter_metric_epochs_status_and_time(grids):
    _, pruned, _, _ = grids
    names = ["loss", "hidden_layers", "units", "activation", "initializer", "regularization",
             "regularization_strength", "dropout_rate", "batch_norm", "input_noise",
             "optimizer", "learning_rate"]
    assert list(pruned.columns[:2]) == ["trial_id", "status"]
    # The `loss` hyperparameter keeps its name; the loss metric is told apart.
    assert {*names, "val_accuracy", "accuracy", "metric_loss", "val_loss", "best_epoch",
            "epochs", "wall_seconds"} <= set(pruned.columns)
    assert (pruned["loss"] == "sparse_categorical_crossentropy").all()
    assert (pruned["metric_loss"] > 0).all() and (pruned["wall_seconds"] > 0).all()
    assert set(pruned["status"]) <= {"COMPLETED", "PRUNED"}


@pytest.mark.xdist_group("grids")
def test_show_prints_top_trials_and_importance_without_tensorflow(grids, tmp_path):
    out, pruned, _, _ = grids
    probe = ("import sys; from kerasdl.cli import main; sys.argv = ['kerasdl', *sys.argv[1:]]\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n"
             "print('HEAVY:', 'tensorflow' in sys.modules, file=sys.stderr)")
    shown = subprocess.run([sys.executable, "-c", probe, "show", str(out)], capture_output=True,
                           text=True, cwd=tmp_path, timeout=120)
    assert "HEAVY: False" in shown.stderr, shown.stderr
    lines = shown.stdout.splitlines()
    completed = (pruned["status"] == "COMPLETED").sum()
    assert lines[0].startswith(f"Search of perceptron with the grid tuner: {completed} of 4 "
                               "trials completed")
    assert f"{(pruned['status'] == 'PRUNED').sum()} pruned" in lines[0]
    assert lines[1].split()[:3] == ["trial_id", "val_accuracy", "status"]
    top = pruned[pruned["status"] == "COMPLETED"].sort_values("val_accuracy").iloc[-1]
    assert lines[2].split()[0] == top["trial_id"]
    listed = json.loads(run_kerasdl("show", out, "--json").stdout)
    assert [t["trial_id"] for t in listed["trials"]][0] == top["trial_id"]
    assert "eta squared" in listed["importance_method"]
    # Only the initializer varies: with 3 finished trials that share a value it is the one
    # hyperparameter ranked; each with a value of its own, there is nothing to tell.
    done = pruned[pruned["status"] == "COMPLETED"]
    if completed >= 3 and done["initializer"].nunique() < completed:
        assert list(listed["importance"]) == ["initializer"]
    else:
        assert listed["importance"] == {}


@pytest.mark.xdist_group("grids")
def test_tensorboard_hparams_read_back_with_tensorboards_reader(grids):
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.plugins.hparams import metadata

    out, pruned, _, _ = grids
    seen = {}
    for run in sorted((out / "tensorboard").iterdir()):
        accumulator = event_accumulator.EventAccumulator(
            str(run / "execution0"), size_guidance={event_accumulator.TENSORS: 0})
        accumulator.Reload()
        content = accumulator.PluginTagToContent(metadata.PLUGIN_NAME)
        start = [metadata.parse_session_start_info_plugin_data(raw)
                 for tag, raw in content.items() if tag == metadata.SESSION_START_INFO_TAG]
        assert len(start) == 1, content.keys()
        hparams = {name: value.ListFields()[0][1] for name, value in start[0].hparams.items()}
        validation = event_accumulator.EventAccumulator(
            str(run / "execution0" / "validation"),
            size_guidance={event_accumulator.TENSORS: 0})
        validation.Reload()
        import tensorflow as tf

        curve = [float(tf.make_ndarray(event.tensor_proto))
                 for event in validation.Tensors("epoch_accuracy")]
        seen[run.name] = (hparams, curve)
    assert set(seen) == set(pruned["trial_id"])
    for _, row in pruned.iterrows():
        hparams, curve = seen[row["trial_id"]]
        assert hparams["initializer"] == row["initializer"]
        assert hparams["learning_rate"] == pytest.approx(0.05)
        assert len(curve) == row["epochs"]  # a pruned trial's scalars end where it stopped
        assert max(curve) == pytest.approx(row["val_accuracy"], abs=1e-6)


def test_only_the_best_trial_keeps_weights_hyperband_keeps_its_schedule(tmp_path):
    """Hyperband with --prune: the same brackets and rounds as without; after either search
    only the best trial keeps a checkpoint."""
    args = ["perceptron", "--tuner", "hyperband", "--epochs", "3", *PINNED[:-2],
            "--set", "learning_rate=0.05", "--no-retrain"]
    schedules = []
    for name, extra in (("plain", []), ("pruned", ["--prune", "--prune-warmup-epochs", "0",
                                                   "--prune-startup-trials", "1"])):
        out = tmp_path / name
        frame = _tune(out, *args, *extra)
        trials = [json.loads(p.read_text()) for p in (out / "tuner").glob("trial_*/trial.json")]
        schedules.append(sorted((t["hyperparameters"]["values"]["tuner/bracket"],
                                 t["hyperparameters"]["values"]["tuner/round"],
                                 t["hyperparameters"]["values"]["tuner/initial_epoch"],
                                 t["hyperparameters"]["values"]["tuner/epochs"])
                                for t in trials))
        kept = sorted(p.parent.name for p in (out / "tuner").rglob("checkpoint*"))
        best = json.loads((out / "best_hyperparameters.json").read_text())["trial_id"]
        assert kept == [f"trial_{best}"], kept
        assert set(frame["status"]) <= {"COMPLETED", "PRUNED"}
    assert schedules[0] == schedules[1]


def test_disk_holds_the_best_checkpoint_plus_logs_for_a_cnn_search(tmp_path):
    out = tmp_path / "cnn"
    frame = _tune(out, "cnn", "--image-size", "8", "--epochs", "1", "--max-trials", "3",
                  "--set", "conv_blocks=1")
    weights = [p for p in out.rglob("*") if p.is_file()
               and (p.name.startswith("checkpoint") or p.suffix == ".keras")]
    best = json.loads((out / "best_hyperparameters.json").read_text())["trial_id"]
    assert sorted(str(p.relative_to(out)) for p in weights) == sorted(
        [f"tuner/trial_{best}/checkpoint.weights.h5", "best/model.keras"])
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    largest = max(p.stat().st_size for p in weights)
    assert total <= 3 * largest + 2_000_000, (total, largest)
    assert len(frame) == 3


def test_warm_start_imports_finished_trials_across_tuners_and_refuses_a_mismatch(tmp_path):
    earlier = tmp_path / "earlier"
    # A learning rate that trains: a trial that diverges is not imported (test_tune_divergence).
    stable = ("--set", "learning_rate=0.01", "--set", "optimizer=adam")
    first = _tune(earlier, "perceptron", "--tuner", "random", "--max-trials", "3",
                  "--epochs", "2", "--no-retrain", *stable)
    warm = tmp_path / "warm"
    frame = _tune(warm, "perceptron", "--tuner", "bayesian", "--max-trials", "2",
                  "--epochs", "2", "--no-retrain", "--warm-start", earlier, *stable)
    imported = frame[frame["status"] == "IMPORTED"]
    assert len(imported) == 3 and (frame["status"] == "COMPLETED").sum() == 2  # 2 new trials
    names = [c for c in first.columns if c in ("hidden_layers", "units", "activation",
                                               "initializer", "optimizer", "learning_rate")]
    key = names + ["val_accuracy"]
    assert sorted(map(tuple, imported[key].astype(str).values)) == sorted(
        map(tuple, first[key].astype(str).values))
    assert set(imported["source_trial"]) == {f"{earlier}:{t}" for t in first["trial_id"]}
    # Not trained again: no weights, no TensorBoard run, the source's wall time.
    for trial_id in imported["trial_id"]:
        assert not list((warm / "tuner" / f"trial_{trial_id}").glob("checkpoint*"))
        assert not (warm / "tensorboard" / trial_id).exists()
    assert sorted(imported["wall_seconds"]) == sorted(first["wall_seconds"])
    shown = run_kerasdl("show", warm)
    assert "2 of 5 trials completed, 3 imported" in shown.stdout.splitlines()[0]
    # Running it again continues the same search: nothing imported twice, nothing new.
    again = _tune(warm, "perceptron", "--tuner", "bayesian", "--max-trials", "2",
                  "--epochs", "2", "--no-retrain", "--warm-start", earlier, *stable)
    assert len(again) == 5

    # Refused, before TensorFlow starts, naming the reason.
    probe = ("import sys; from kerasdl.cli import main; sys.argv = ['kerasdl', *sys.argv[1:]]\n"
             "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
             "print('HEAVY:', 'tensorflow' in sys.modules, code, file=sys.stderr)")
    cases = [
        (["regression", "--warm-start", str(earlier)], "is a search of recipe 'perceptron', "
         "not 'regression'"),
        (["perceptron", "--data", "blobs", "--warm-start", str(earlier)],
         "searched other data (data='xor' there, 'blobs' here)"),
        (["perceptron", "--tuner", "hyperband", "--warm-start", str(earlier)],
         "runs its own brackets"),
        (["perceptron", "--warm-start", str(tmp_path)], "is not a search directory"),
        (["perceptron", "--epochs", "3", "--warm-start", str(earlier)],
         "trained its trials with epochs=2, this search with epochs=3; their scores would "
         "not compare. Pass --epochs 2"),
        (["perceptron", "--epochs", "2", "--objective", "val_loss", "--warm-start",
          str(earlier)], "optimised 'val_accuracy', not 'val_loss'"),
        (["perceptron", "--prune-warmup-epochs", "2"], "applies with --prune"),
    ]
    for args, fragment in cases:
        result = subprocess.run([sys.executable, "-c", probe, "tune", *args, "--output",
                                 str(tmp_path / "refused")], capture_output=True, text=True,
                                cwd=tmp_path, timeout=120)
        assert "HEAVY: False 2" in result.stderr, (args, result.stderr)
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1 and fragment in errors[0], (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "refused").exists()
