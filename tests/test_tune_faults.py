"""`kerasdl tune` under faults: damaged trials, re-runs, killed launchers, locks, full disks.

Every process a test starts is ended by PID in a `finally`; every wait is bounded.
"""

import json
import os
import signal
import subprocess
import sys

import pandas as pd
import pytest

from conftest import run_kerasdl
from kerasdl.tuning import repair
from processes import alive
from processes import descendants
from processes import end_all
from processes import error_lines
from processes import fill
from processes import small_disk  # noqa: F401 (a fixture)
from processes import start_kerasdl
from processes import wait_until

SMALL = ["--max-trials", "3", "--epochs", "2", "--no-retrain"]


def _tune(out, *args, timeout=300, env=None):
    return run_kerasdl("tune", "regression", "--output", out, *args, timeout=timeout, env=env)


def _trials(out):
    """trial_id -> (status, score, values) read from Keras Tuner's own trial files."""
    found = {}
    for path in sorted((out / "tuner").glob("trial_*/trial.json")):
        state = json.loads(path.read_text())
        found[state["trial_id"]] = (state["status"], state["score"],
                                    state["hyperparameters"]["values"])
    return found


def _mtimes(out):
    return {str(p): p.stat().st_mtime_ns for p in (out / "tuner").glob("trial_*/*")}


def test_damaged_trials_are_set_aside_and_only_they_run_again(tmp_path):
    out = tmp_path / "search"
    assert _tune(out, *SMALL).returncode == 0
    before = _trials(out)
    assert [status for status, _, _ in before.values()] == ["COMPLETED"] * 3
    # Keras Tuner #987: a truncated trial.json, and one of random bytes.
    trial_1 = out / "tuner" / "trial_1" / "trial.json"
    trial_2 = out / "tuner" / "trial_2" / "trial.json"
    trial_1.write_bytes(os.urandom(300))
    trial_2.write_text(trial_2.read_text()[:150])
    kept = (out / "tuner" / "trial_0" / "trial.json").read_bytes()

    shown = run_kerasdl("show", out)
    assert shown.returncode == 0, shown.stderr
    assert "1 of 3 trials completed (2 damaged)" in shown.stdout

    rerun = _tune(out, *SMALL)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    notes = [line for line in rerun.stderr.splitlines() if "is damaged; set it aside" in line]
    assert len(notes) == 2 and "trial 1's" in notes[0] and "trial 2's" in notes[1]
    aside = sorted(p.name.split("-")[0] for p in (out / "damaged").iterdir())
    assert aside == ["trial_1", "trial_2"]
    assert (out / "tuner" / "trial_0" / "trial.json").read_bytes() == kept  # not touched
    after = _trials(out)
    assert sorted(after) == ["0", "1", "2"]  # no fourth trial, none overwritten
    for trial_id in ("1", "2"):  # the same configuration ran again, from its own seed
        assert after[trial_id][0] == "COMPLETED"
        assert after[trial_id][2] == before[trial_id][2]
        assert after[trial_id][1] == pytest.approx(before[trial_id][1], rel=1e-4)
    shown = run_kerasdl("show", out)
    assert "3 of 3 trials completed;" in shown.stdout


def _trial_state(trial_id, status, score=None, values=None):
    return {"trial_id": trial_id, "status": status, "score": score, "best_step": 0,
            "message": None, "metrics": {"metrics": {}},
            "hyperparameters": {"space": [], "values": values or {"units": 8}}}


def test_repair_keeps_completed_trials_and_queues_the_rest_once(tmp_path):
    project = tmp_path / "tuner"
    space = {"space": [{"class_name": "Int", "config": {
        "name": "units", "default": 8, "conditions": [], "min_value": 8, "max_value": 64,
        "step": 8, "sampling": "linear"}}], "values": {"units": 8}}
    for trial_id, status in [("0", "COMPLETED"), ("1", "COMPLETED"), ("2", "FAILED"),
                             ("3", "RUNNING")]:
        (project / f"trial_{trial_id}").mkdir(parents=True)
        (project / f"trial_{trial_id}" / "trial.json").write_text(
            json.dumps(_trial_state(trial_id, status, 1.0)))
    (project / "trial_1" / "kerasdl_trial.json").write_text('{"hyperparameters": {"units": 48}}')
    (project / "trial_1" / "trial.json").write_bytes(b"\x00\xff garbage")
    state = {"hyperparameters": space, "ongoing_trials": {"worker0": "0", "worker1": "3"},
             "retry_queue": ["3"], "start_order": ["0", "1", "2", "3"],
             "end_order": ["0", "1", "2"], "run_times": {"0": 1, "1": 1, "2": 2, "3": 1}}
    (project / "oracle.json").write_text(json.dumps(state))

    assert sorted(repair(project)) == ["1", "2"]
    state = json.loads((project / "oracle.json").read_text())
    # Completed trial 0 is not ongoing any more: Keras Tuner would run it again.
    assert state["ongoing_trials"] == {"worker1": "3"}
    # Trial 3 is re-queued by Keras Tuner's reload (ongoing); 1 and 2 once each.
    assert sorted(state["retry_queue"]) == ["1", "2"]
    assert state["end_order"] == ["0"] and state["run_times"]["2"] == 0
    rebuilt = json.loads((project / "trial_1" / "trial.json").read_text())
    assert rebuilt["status"] == "RUNNING" and rebuilt["hyperparameters"]["values"] == {"units": 48}
    assert json.loads((project / "trial_0" / "trial.json").read_text())["status"] == "COMPLETED"
    assert list((tmp_path / "damaged").iterdir())[0].name.startswith("trial_1-")


def _start_long_search(out, workers=2):
    return start_kerasdl("tune", "regression", "--output", out, "--max-trials", "4",
                         "--epochs", "2000", "--no-retrain", "--workers", workers)


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_search_launcher_leaves_no_process_behind(tmp_path, how):
    out = tmp_path / "search"
    launcher = _start_long_search(out)
    children = []
    try:
        wait_until(lambda: (out / "tuner" / "trial_1" / "trial.json").exists(), 240,
                   "two trials running", launcher)
        children = descendants(launcher.pid)
        assert len(children) >= 3  # the chief and two workers
        launcher.send_signal(how)
        launcher.wait(timeout=30)
        wait_until(lambda: not any(alive(p) for p in children), 15,
                   "the chief and workers ending with their launcher")
        if how == signal.SIGTERM:
            lines = error_lines(launcher.stderr.read())
            assert launcher.returncode == 130 and len(lines) == 1 and "SIGTERM" in lines[0]
        # The lock is released (SIGTERM) or stale (SIGKILL: its holder is gone), so the
        # same command continues the search, alone in its folder.
        lock = out / ".kerasdl.lock"
        assert not lock.exists() or not alive(json.loads(lock.read_text())["pid"])
    finally:
        end_all([launcher.pid, *children])
        launcher.wait()


def test_a_second_search_in_the_same_folder_is_refused_and_a_stale_lock_taken_over(tmp_path):
    out = tmp_path / "search"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from kerasdl import "
                               "locks; locks.acquire(sys.argv[1], 'search'); print('held', "
                               "flush=True); time.sleep(300)", str(out)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        refused = _tune(out, "--max-trials", "1", "--epochs", "1", "--no-retrain")
        lines = error_lines(refused.stderr)
        assert refused.returncode == 1 and len(lines) == 1, refused.stderr[-2000:]
        assert f"in use by process {holder.pid} on host " in lines[0]
        assert not (out / "search.json").exists()  # nothing ran
        holder.kill()
        holder.wait()
        taken = _tune(out, "--max-trials", "1", "--epochs", "1", "--no-retrain")
        assert taken.returncode == 0, taken.stderr[-2000:]
        assert f"taking over the stale lock of search {str(out)!r} (process {holder.pid}" \
            in taken.stderr
        assert list(_trials(out)) == ["0"] and not (out / ".kerasdl.lock").exists()
    finally:
        end_all([holder.pid])
        holder.wait()


def test_a_dead_chief_is_named_in_one_line(tmp_path):
    out = tmp_path / "search"
    launcher = _start_long_search(out, workers=1)
    children = []
    try:
        wait_until(lambda: (out / "tuner" / "trial_0" / "trial.json").exists(), 240,
                   "a trial running", launcher)
        children = descendants(launcher.pid)
        chief = [p for p in children
                 if b"worker_main" in open(f"/proc/{p}/cmdline", "rb").read()][0]
        os.kill(chief, signal.SIGKILL)
        _, stderr = launcher.communicate(timeout=60)
        lines = error_lines(stderr)
        assert launcher.returncode == 1 and len(lines) == 1, stderr[-2000:]
        assert "the tuner chief was killed by SIGKILL" in lines[0]
        assert "chief.log" in lines[0]
        wait_until(lambda: not any(alive(p) for p in children), 15, "the worker stopped")
    finally:
        end_all([launcher.pid, *children])
        launcher.wait()


def test_a_full_disk_fails_the_trial_in_one_line_and_the_next_run_retries_it(small_disk):
    out = small_disk / "search"
    assert _tune(out, "--max-trials", "1", "--epochs", "2", "--no-retrain").returncode == 0
    fill(small_disk, leave=400_000)  # less than the 1 MB kerasdl keeps free when saving
    full = _tune(out, *SMALL)
    lines = error_lines(full.stderr)
    assert full.returncode == 1 and len(lines) == 1, full.stderr[-2000:]
    assert "space" in lines[0] and str(out) in lines[0] and "MB needed" in lines[0]
    assert "Traceback" not in full.stderr and "consecutive" not in full.stderr
    (small_disk / "filler").unlink()  # space is back
    again = _tune(out, *SMALL)
    assert again.returncode == 0, again.stderr[-2000:]
    trials = _trials(out)
    assert sorted(trials) == ["0", "1", "2"]
    assert all(status == "COMPLETED" for status, _, _ in trials.values())


def test_the_same_seeded_search_scores_the_same_whatever_the_worker_count(tmp_path):
    alone = _tune(tmp_path / "alone", *SMALL, "--seed", "7")
    assert alone.returncode == 0, alone.stderr[-2000:]
    spread = _tune(tmp_path / "spread", *SMALL, "--seed", "7", "--workers", "2")
    assert spread.returncode == 0, spread.stderr[-2000:]
    one, two = _trials(tmp_path / "alone"), _trials(tmp_path / "spread")
    assert sorted(one) == sorted(two) == ["0", "1", "2"]
    for trial_id in one:
        assert one[trial_id][2] == two[trial_id][2]  # the oracle hands out the same values
        assert one[trial_id][1] == pytest.approx(two[trial_id][1], rel=1e-4), trial_id
    frame = pd.read_csv(tmp_path / "spread" / "results.csv")
    assert frame["val_mae"].nunique() == 3

    # A finished search with workers trains nothing when run again.
    stamps = _mtimes(tmp_path / "spread")
    again = _tune(tmp_path / "spread", *SMALL, "--seed", "7", "--workers", "2")
    assert again.returncode == 0, again.stderr[-2000:]
    assert sorted(_trials(tmp_path / "spread")) == ["0", "1", "2"], \
        "a finished search ran another trial"
    assert _mtimes(tmp_path / "spread") == stamps, "a finished search ran a trial again"


def test_a_disk_that_fills_during_a_trial_fails_it_in_one_line_and_it_runs_again(small_disk):
    from processes import run_without_space_check

    out = small_disk / "search"
    assert _tune(out, "--max-trials", "1", "--epochs", "2", "--no-retrain").returncode == 0
    first = _trials(out)["0"]
    fill(small_disk, leave=40_000)  # the check before saving passes; the write fails
    full = run_without_space_check("tune", "regression", "--output", out, *SMALL)
    lines = error_lines(full.stderr)
    assert full.returncode == 1 and len(lines) == 1, full.stderr[-2000:]
    assert "No space left" in lines[0] and str(out) in lines[0] and "MB needed" in lines[0]
    assert "Traceback" not in full.stderr and "consecutive" not in full.stderr
    assert _trials(out)["0"] == first  # the completed trial is kept as it was
    (small_disk / "filler").unlink()  # space is back
    again = _tune(out, *SMALL)
    assert again.returncode == 0, again.stderr[-2000:]
    trials = _trials(out)
    assert sorted(trials) == ["0", "1", "2"] and trials["0"] == first
    assert all(status == "COMPLETED" for status, _, _ in trials.values())
