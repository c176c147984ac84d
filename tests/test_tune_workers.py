"""`kerasdl tune` under stress: killed mid-trial, a killed worker, chief and workers apart."""

import json
import os
import signal
import subprocess
import sys
import time

from conftest import assert_trials_complete_and_unique as _assert_complete_and_unique
from conftest import search_results as _results
from kerasdl import registry
from kerasdl.tuning import repair


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
    args = ["--max-trials", "3", "--epochs", "400", "--no-retrain"]
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
    _assert_complete_and_unique(_results(out), 3, names)


def test_repair_drops_trials_the_oracle_never_recorded(tmp_path):
    project = tmp_path / "tuner"
    (project / "trial_0").mkdir(parents=True)
    (project / "trial_0" / "trial.json").write_text(json.dumps(
        {"trial_id": "0", "hyperparameters": {}, "metrics": {}, "status": "RUNNING"}))
    (project / "trial_1").mkdir()
    (project / "trial_1" / "trial.json").write_text('{"trial_id": ')
    (project / "trial_2").mkdir()  # created, never written
    assert repair(project) == []  # no oracle.json yet: nothing had started for Keras Tuner
    assert sorted(p.name for p in project.iterdir()) == ["trial_0"]


def test_chief_and_two_workers_survive_a_killed_worker(tmp_path):
    out = tmp_path / "search"
    args = ["--max-trials", "4", "--epochs", "120", "--workers", "2", "--no-retrain"]
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
    _assert_complete_and_unique(_results(out), 4, names)
    assert (out / "logs" / "chief.log").is_file()


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
