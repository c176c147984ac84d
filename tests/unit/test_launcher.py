"""`supervisor.launch`, the one launcher of `train --workers` and `tune --workers`.

Its children are real processes (small Python programs), so what is tested is what
the launcher does with processes that end, fail, or are killed.
"""

import sys

from kerasdl import supervisor
from kerasdl.supervisor import Child


def _python(code):
    return [sys.executable, "-c", code]


SLEEPER = _python("import time; time.sleep(60)")


def _pid_file_child(name, tmp_path, code):
    """A child that writes its PID to NAME.pid, then runs `code`."""
    return Child(name, _python(f"import os, pathlib; pathlib.Path({str(tmp_path)!r}, "
                               f"'{name}.pid').write_text(str(os.getpid())); {code}"),
                 log=tmp_path / f"{name}.log")


def _alive(pid):
    from kerasdl.locks import pid_alive

    return pid_alive(pid)


def test_children_that_all_succeed_give_0(tmp_path):
    children = [Child(f"w{i}", _python("print('done')"), log=tmp_path / f"w{i}.log")
                for i in range(3)]
    assert supervisor.launch(children, poll=0.05) == 0
    assert all((tmp_path / f"w{i}.log").read_text() == "done\n" for i in range(3))


def test_a_failed_child_stops_the_others_and_is_named_in_one_line(tmp_path, capsys):
    children = [_pid_file_child("sleeper", tmp_path, "import time; time.sleep(60)"),
                Child("broken", _python("import sys, time; time.sleep(0.5); "
                                        "print('Error: the data is gone'); sys.exit(3)"),
                      log=tmp_path / "broken.log", label="worker 1 of 2")]
    assert supervisor.launch(children, poll=0.05, settle=0.3) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"Error: worker 1 of 2 exited with code 3; last error line: Error: the "
                     f"data is gone (log: {tmp_path / 'broken.log'})"]
    assert not _alive(int((tmp_path / "sleeper.pid").read_text()))


def test_a_child_killed_from_outside_is_the_cause_over_those_that_fail_after_it(tmp_path,
                                                                                 capsys):
    # The peer fails because the killed one is gone: the line names the killed one.
    children = [Child("peer", _python("import sys, time; time.sleep(1.0); "
                                      "print('Error: collective ops aborted'); sys.exit(1)"),
                      log=tmp_path / "peer.log"),
                Child("killed", _python("import os, signal, time; time.sleep(0.5); "
                                        "os.kill(os.getpid(), signal.SIGKILL)"),
                      log=tmp_path / "killed.log")]
    assert supervisor.launch(children, poll=0.05) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: killed was killed by SIGKILL")


def test_a_policy_restarts_a_lost_child_and_ends_the_launch(tmp_path):
    marker = tmp_path / "second-life"
    flaky = Child("flaky", _python(
        f"import pathlib, sys; m = pathlib.Path({str(marker)!r}); first = not m.exists(); "
        "m.touch(); sys.exit(5 if first else 0)"), log=tmp_path / "flaky.log")
    seen = []

    def watch_over(watch, ended):
        for name, code in ended:
            seen.append((name, code))
            if code:
                watch.respawn(name)
        return "done" if seen and seen[-1] == ("flaky", 0) else None

    assert supervisor.launch([flaky], watch_over=watch_over, poll=0.05) == "done"
    assert seen == [("flaky", 5), ("flaky", 0)]


def test_a_policy_that_ends_early_stops_the_children_still_running(tmp_path):
    sleeper = _pid_file_child("sleeper", tmp_path, "import time; time.sleep(60)")
    quick = Child("quick", _python("pass"), log=tmp_path / "quick.log")

    def watch_over(watch, ended):
        return 7 if ("quick", 0) in ended else None

    assert supervisor.launch([sleeper, quick], watch_over=watch_over, poll=0.05) == 7
    assert not _alive(int((tmp_path / "sleeper.pid").read_text()))


def test_an_echoed_childs_own_error_line_stands_with_its_exit_code(tmp_path, capfd):
    echoed = Child("chief", _python("import sys; print('progress', file=sys.stderr); "
                                    "print('Error: `epochs` must be a positive integer.', "
                                    "file=sys.stderr); sys.exit(2)"), echo=True)
    assert supervisor.launch([echoed, Child("other", SLEEPER, log=tmp_path / "o.log")],
                             poll=0.05, settle=0.3) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert err == ["progress", "Error: `epochs` must be a positive integer."]
