"""`kerasdl tune`: search, report, best run, resume after SIGKILL, chief and workers."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from conftest import assert_one_line_error
from kerasdl import registry
from kerasdl.tuning import repair

FAST = ["--epochs", "8"]


def _results(directory):
    return pd.read_csv(directory / "results.csv")


def _assert_complete_and_unique(frame, count, names):
    assert len(frame) == count, frame
    assert (frame["status"] == "COMPLETED").all(), frame
    assert frame["trial_id"].is_unique
    assert not frame[names].astype(str).duplicated().any(), "a configuration ran twice"


def test_search_report_best_run_and_resume(cli, tmp_path):
    out = tmp_path / "search"
    result = cli("tune", "regression", "--max-trials", "3", *FAST, "--output", out)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == str(out)

    frame = _results(out)
    names = [p["name"] for p in registry.recipe_info("regression")["search_space"]]
    assert list(frame.columns[:2]) == ["trial_id", "status"]
    assert {*names, "val_mae", "best_epoch", "wall_seconds"} <= set(frame.columns)
    _assert_complete_and_unique(frame, 3, names)
    best = json.loads((out / "best_hyperparameters.json").read_text())
    assert best["val_mae"] == pytest.approx(frame["val_mae"].min())
    assert set(best["hyperparameters"]) == set(names)
    for plot in ("objective.png", "hyperparameters.png"):
        assert (out / "plots" / plot).is_file()
    assert not list((out / "tuner").rglob("checkpoint*")), "trial checkpoints pile up"

    # The best configuration, retrained on train + validation, is an ordinary run.
    config = json.loads((out / "best" / "config.json").read_text())
    assert config["status"] == "completed" and config["settings"]["merge_validation"]
    assert {k: config["hyperparameters"][k] for k in names} == best["hyperparameters"]
    scores = cli("evaluate", out / "best", "--json")
    assert scores.exit_code == 0 and json.loads(scores.stdout)["split"] == "test"

    shown = cli("show", out)
    assert shown.exit_code == 0
    assert "3 of 3 trials completed" in shown.stdout
    assert shown.stdout.splitlines()[1].split()[:2] == ["trial_id", "val_mae"]

    # Re-running continues: nothing finished runs again, the best run is kept.
    stamps = {p: p.stat().st_mtime_ns for p in (out / "tuner").glob("trial_*/trial.json")}
    model_stamp = (out / "best" / "model.keras").stat().st_mtime_ns
    again = cli("tune", "regression", "--max-trials", "3", *FAST, "--output", out)
    assert again.exit_code == 0, again.stderr
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert (out / "best" / "model.keras").stat().st_mtime_ns == model_stamp

    # More trials continue the same search.
    more = cli("tune", "regression", "--max-trials", "5", *FAST, "--output", out)
    assert more.exit_code == 0, more.stderr
    _assert_complete_and_unique(_results(out), 5, names)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps

    # A different search is refused, naming the difference; --overwrite starts afresh.
    changed = cli("tune", "regression", "--max-trials", "5", "--epochs", "9", "--output", out)
    assert_one_line_error(changed, 2, "holds a different search", "settings.epochs",
                          "--overwrite")
    assert len(_results(out)) == 5
    fresh = cli("tune", "regression", "--max-trials", "2", "--epochs", "9", "--output", out,
                "--overwrite", "--set", "loss=mse", "--no-retrain")
    assert fresh.exit_code == 0, fresh.stderr
    frame = _results(out)
    assert len(frame) == 2 and (frame["loss"] == "mse").all()
    assert not (out / "best").exists()


def _start_search(out, *args):
    return subprocess.Popen(
        [sys.executable, "-m", "kerasdl", "tune", "regression", "--output", str(out), *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _wait_for(path, process, timeout=120):
    deadline = time.time() + timeout
    while not path.exists():
        assert process.poll() is None, "the search ended before the moment to kill it"
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.2)


def test_search_killed_mid_trial_resumes_without_loss_or_repeat(tmp_path):
    out = tmp_path / "search"
    args = ["--max-trials", "4", "--epochs", "400", "--no-retrain"]
    process = _start_search(out, *args)
    _wait_for(out / "tuner" / "trial_1" / "trial.json", process)
    time.sleep(1.0)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    state = json.loads((out / "tuner" / "oracle.json").read_text())
    assert list(state["ongoing_trials"].values()) == ["1"]
    # SIGKILL can land while Keras Tuner rewrites a file in place: make that happen.
    (out / "tuner" / "trial_1" / "trial.json").write_text('{"trial_id": "1", "hyperpa')

    rerun = subprocess.run([sys.executable, "-m", "kerasdl", "tune", "regression", "--output",
                            str(out), *args], capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    names = [p["name"] for p in registry.recipe_info("regression")["search_space"]]
    _assert_complete_and_unique(_results(out), 4, names)


def test_repair_drops_unreadable_trials_and_their_references(tmp_path):
    project = tmp_path / "tuner"
    (project / "trial_0").mkdir(parents=True)
    (project / "trial_0" / "trial.json").write_text('{"trial_id": "0"}')
    (project / "trial_1").mkdir()
    (project / "trial_1" / "trial.json").write_text('{"trial_id": ')
    (project / "trial_2").mkdir()  # created, never written
    (project / "oracle.json").write_text(json.dumps(
        {"ongoing_trials": {"tuner0": "1", "tuner1": "0"}, "retry_queue": ["2", "0"]}))
    assert sorted(repair(project)) == ["1", "2"]
    assert sorted(p.name for p in project.iterdir()) == ["oracle.json", "trial_0"]
    state = json.loads((project / "oracle.json").read_text())
    assert state["ongoing_trials"] == {"tuner1": "0"} and state["retry_queue"] == ["0"]


def test_chief_and_two_workers_survive_a_killed_worker(tmp_path):
    out = tmp_path / "search"
    args = ["--max-trials", "6", "--epochs", "120", "--workers", "2", "--no-retrain"]
    process = subprocess.Popen(
        [sys.executable, "-m", "kerasdl", "tune", "regression", "--output", str(out), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(out / "tuner" / "trial_1" / "trial.json", process, timeout=180)
    workers = subprocess.run(["pgrep", "-f", f"worker_main.*{out}"], capture_output=True,
                             text=True).stdout.split()
    assert len(workers) == 3  # the chief and two workers
    chief_pid = sorted(workers, key=int)[0]
    victim = [pid for pid in workers if pid != chief_pid][0]
    os.kill(int(victim), signal.SIGKILL)
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-2000:]
    assert "restarting it" in stderr
    names = [p["name"] for p in registry.recipe_info("regression")["search_space"]]
    _assert_complete_and_unique(_results(out), 6, names)
    assert (out / "logs" / "chief.log").is_file()


@pytest.mark.parametrize("recipe,extra", [
    ("cnn", ["--set", "conv_blocks=1"]),
    ("lstm", []),
    ("autoencoder", ["--set", "variant=variational"]),
    ("gan", []),
])
def test_every_kind_of_recipe_can_be_tuned(cli, tmp_path, recipe, extra):
    out = tmp_path / "search"
    result = cli("tune", recipe, "--max-trials", "2", "--epochs", "2", "--output", out, *extra)
    assert result.exit_code == 0, result.stderr
    frame = _results(out)
    assert len(frame) == 2 and (frame["status"] == "COMPLETED").all()
    objective = json.loads((out / "search.json").read_text())["objective"]["name"]
    assert frame[objective].notna().all()
    assert (out / "best" / "model.keras").is_file()


def test_tune_bad_inputs(cli, tmp_path):
    assert_one_line_error(cli("tune", "regression", "--tuner", "genetic"), 2,
                          "'genetic' is not one of 'random', 'bayesian', 'hyperband', 'grid'")
    assert_one_line_error(cli("tune", "regression", "--max-trials", "0"), 2,
                          "`max_trials` must be a positive integer")
    assert_one_line_error(cli("tune", "regression", "--set", "units=3"), 2,
                          "`units` must be an integer in [16, 256]")
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = cli("tune", "regression", "--workers", "1", "--port", port,
                     "--output", tmp_path / "s")
    assert_one_line_error(result, 2, f"Port {port} on 127.0.0.1 is busy")
    assert not (tmp_path / "runs").exists()


def test_chief_and_workers_started_as_on_separate_machines(tmp_path):
    from kerasdl.tuning import free_port

    port = str(free_port())
    common = [sys.executable, "-m", "kerasdl", "tune", "regression", "--max-trials", "4",
              "--epochs", "20", "--no-retrain", "--host", "127.0.0.1", "--port", port]
    chief = subprocess.Popen([*common, "--role", "chief", "--output", str(tmp_path / "chief")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)
    workers = [subprocess.Popen([*common, "--role", "worker", "--worker-id", f"w{i}",
                                 "--output", str(tmp_path / f"worker{i}")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
               for i in range(2)]
    for worker in workers:
        assert worker.wait(timeout=300) == 0, worker.stderr.read()[-2000:]
    _, stderr = chief.communicate(timeout=120)
    assert chief.returncode == 0, stderr[-2000:]
    names = [p["name"] for p in registry.recipe_info("regression")["search_space"]]
    _assert_complete_and_unique(_results(tmp_path / "chief"), 4, names)
