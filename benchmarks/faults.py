"""Fault injection for searches and multi-process runs (issue 20): one table, every fault.

Each fault is a test of tests/test_tune_faults.py or tests/test_reliability.py that
injects it into real processes on loopback (SIGKILL, SIGTERM, damaged files, a lock
held by another process, a worker that never starts, a full tmpfs) and checks the
outcome and that nothing completed was lost or run twice. This script runs them one
at a time and prints the table that goes into the README's reliability section.

    python benchmarks/faults.py            # every fault (about 20 minutes on 2 cores)
    python benchmarks/faults.py -k lock    # the faults whose test id contains "lock"

The disk-full faults mount a 3 MB tmpfs and need root; without it they read "skipped".
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TUNE = "tests/test_tune_faults.py::"
TRAIN = "tests/test_reliability.py::"
FAULTS = [
    ("trial.json of 2 completed trials: random bytes, truncated",
     "set aside in damaged/, named on stderr; only those 2 re-run (same values, same scores)",
     TUNE + "test_damaged_trials_are_set_aside_and_only_they_run_again"),
    ("oracle.json: completed trial still ongoing, failed trial, damaged trial",
     "completed kept; failed and damaged queued once each",
     TUNE + "test_repair_keeps_completed_trials_and_queues_the_rest_once"),
    ("finished `tune --workers 2` run again",
     "trains nothing: no new trial, no trial file rewritten",
     TUNE + "test_a_finished_search_with_workers_trains_nothing_when_run_again"),
    ("SIGKILL of the `tune --workers 2` launcher",
     "chief and workers end within seconds (parent-death signal); lock stale, taken over",
     TUNE + "test_a_killed_search_launcher_leaves_no_process_behind[9]"),
    ("SIGTERM of the `tune --workers 2` launcher",
     "forwarded: chief and workers stopped, lock released, exit 130, one line",
     TUNE + "test_a_killed_search_launcher_leaves_no_process_behind[15]"),
    ("second `tune` in a folder in use; then its holder SIGKILLed",
     "refused naming PID and host (exit 1); stale lock taken over with a note",
     TUNE + "test_a_second_search_in_the_same_folder_is_refused_and_a_stale_lock_taken_over"),
    ("SIGKILL of the tuner chief",
     "exit 1, one line: `the tuner chief was killed by SIGKILL` + its log; worker stopped",
     TUNE + "test_a_dead_chief_is_named_in_one_line"),
    ("disk full (tmpfs) during a trial; space back, same command",
     "one line naming the folder and MB needed/free; the trial runs on the next run",
     TUNE + "test_a_full_disk_fails_the_trial_in_one_line_and_the_next_run_retries_it"),
    ("disk fills during a trial's save (ENOSPC from the write); space back, same command",
     "one line naming the folder and MB needed; completed trial kept; the trial runs again",
     TUNE + "test_a_disk_that_fills_during_a_trial_fails_it_in_one_line_and_it_runs_again"),
    ("same seeded search, 0 and 2 workers",
     "same values and scores per trial",
     TUNE + "test_the_same_seeded_search_scores_the_same_whatever_the_worker_count"),
    ("SIGKILL of the `train --workers 2` launcher",
     "workers end within seconds; its temporary folder removed by the next launch",
     TRAIN + "test_killed_train_workers_launcher_leaves_no_process_or_folder[9]"),
    ("SIGTERM of the `train --workers 2` launcher",
     "forwarded: workers stopped, run marked interrupted, temporary folder removed, exit 130",
     TRAIN + "test_killed_train_workers_launcher_leaves_no_process_or_folder[15]"),
    ("SIGKILL of worker 1 of `train --workers 2`",
     "exit 1, one line: `worker 1 of 2 was killed by SIGKILL`; chief stopped",
     TRAIN + "test_a_killed_worker_is_named_in_one_line"),
    ("`train --output` into a run folder in use",
     "refused naming PID and host (exit 1), nothing written",
     TRAIN + "test_a_run_folder_in_use_is_refused_naming_its_process"),
    ("`--strategy multiworker`, worker 1 never starts",
     "after KERASDL_PEER_TIMEOUT s: exit 1, one line naming worker 1 and its address",
     TRAIN + "test_multiworker_waits_a_bounded_time_for_a_missing_worker_and_names_it"),
    ("SIGTERM while waiting for the cluster",
     "ends within 5 s, one line naming the signal and worker 1; nothing written",
     TRAIN + "test_multiworker_waiting_for_peers_stops_at_once_on_sigterm_or_ctrl_c[15]"),
    ("Ctrl-C while waiting for the cluster",
     "ends within 5 s, one line naming worker 1; nothing written",
     TRAIN + "test_multiworker_waiting_for_peers_stops_at_once_on_sigterm_or_ctrl_c[2]"),
    ("disk full (tmpfs) while training; space back, --resume",
     "one line naming the folder and MB needed/free; run `failed`; resume completes it",
     TRAIN + "test_a_full_disk_while_training_fails_the_run_in_one_line"),
    ("disk fills during a backup (ENOSPC from the write); space back, --resume",
     "one line naming the folder and MB needed; run `failed`, no partial file; resume completes",
     TRAIN + "test_a_disk_that_fills_during_a_save_fails_the_run_in_one_line"),
]


def run(test, timeout):
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0", "-p",
                               "no:cacheprovider", test], cwd=ROOT, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timed out", time.monotonic() - started
    last = (done.stdout.strip().splitlines() or ["?"])[-1]
    outcome = ("skipped" if " skipped" in last and " passed" not in last
               else "ok" if done.returncode == 0 else "FAILED")
    return outcome, time.monotonic() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", dest="keyword", help="run only faults whose test id has this")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per fault")
    args = parser.parse_args()
    rows = []
    for fault, expected, test in FAULTS:
        if args.keyword and args.keyword not in test:
            continue
        status, seconds = run(test, args.timeout)
        print(f"{status:9s} {seconds:6.0f} s  {fault}", file=sys.stderr, flush=True)
        lost = "none" if status == "ok" else "not checked" if status == "skipped" else "see test"
        outcome = expected if status == "ok" else f"{status.upper()}: expected {expected}"
        rows.append((fault, outcome, lost, f"{seconds:.0f} s"))
    print("| fault | outcome | data lost | time |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0 if all(not row[1].startswith(("FAILED", "TIMED")) for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
