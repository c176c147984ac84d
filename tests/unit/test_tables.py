"""`kerasdl.tables`: the tables and reports the commands print, built from their data."""

import json

import pytest

from kerasdl import tables


def test_table_columns_are_as_wide_as_their_widest_value():
    text = tables.table([("a", 1), ("longer", 22)], ("NAME", "N"))
    lines = text.splitlines()
    assert lines == ["NAME    N", "a       1", "longer  22"]


@pytest.mark.parametrize("param,text", [
    ({"type": "Int", "min_value": 1, "max_value": 8, "step": 1}, "1 .. 8 step 1"),
    ({"type": "Float", "min_value": 1e-4, "max_value": 0.1, "sampling": "log"},
     "0.0001 .. 0.1 (log)"),
    ({"type": "Float", "min_value": 0.0, "max_value": 0.5, "sampling": "linear"}, "0.0 .. 0.5"),
    ({"type": "Choice", "values": ["adam", "sgd"]}, "adam, sgd"),
    ({"type": "Boolean"}, "true, false"),
    ({"type": "Fixed", "value": 3}, "3"),
])
def test_domain_says_a_search_space_entry_in_words(param, text):
    assert tables.domain(param) == text


def _search(tmp_path, rows, damaged=()):
    """A search directory as `kerasdl tune` leaves it: search.json, results.csv, trials."""
    folder = tmp_path / "search"
    (folder / "tuner").mkdir(parents=True)
    (folder / "search.json").write_text(json.dumps({
        "recipe": "tiny", "tuner": "random",
        "objective": {"name": "val_accuracy", "direction": "max"},
        "search_space": [{"name": "units", "type": "Int"}]}))
    lines = ["trial_id,val_accuracy,status,units"]
    lines += [f"{trial},{score},{status},{units}" for trial, score, status, units in rows]
    (folder / "results.csv").write_text("\n".join(lines) + "\n")
    for trial, *_ in rows:
        trial_folder = folder / "tuner" / f"trial_{trial}"
        trial_folder.mkdir()
        (trial_folder / "trial.json").write_text("{" if trial in damaged else "{}")
    return folder


def test_search_ranks_finished_trials_and_counts_the_others(tmp_path):
    folder = _search(tmp_path, [("0", 0.5, "COMPLETED", 8), ("1", 0.9, "COMPLETED", 32),
                                ("2", 0.1, "PRUNED", 4), ("3", 0.7, "COMPLETED", 16)])
    found = json.loads(tables.search(folder, as_json=True))
    assert [trial["trial_id"] for trial in found["trials"]] == ["1", "3", "0"]  # best first
    # 3 trials, 3 values of units: each its own group, which "explains" anything.
    assert found["importance"] == {}
    text = tables.search(folder)
    assert "values that more than one trial shares" in text
    assert text.splitlines()[0].startswith("Search of tiny with the random tuner: 3 of 4 "
                                           "trials completed, 1 pruned")


def test_a_damaged_trial_file_is_not_a_finished_trial(tmp_path, capsys):
    folder = _search(tmp_path, [("0", 0.5, "COMPLETED", 8), ("1", 0.9, "COMPLETED", 32)],
                     damaged=("1",))
    found = json.loads(tables.search(folder, as_json=True))
    assert [trial["trial_id"] for trial in found["trials"]] == ["0"]
    assert "trial 1 of" in capsys.readouterr().err


def test_contract_notes_list_warnings_violations_and_the_contract(tmp_path):
    report = {"checks": [{"check": "header", "passed": True, "message": "warning: stale"},
                         {"check": "save", "passed": False, "message": "reload differs"},
                         {"check": "task", "passed": True, "message": "classification"}],
              "violations": [{"check": "save", "message": "reload differs"}]}
    notes = tables.contract_notes(report)
    assert notes[:2] == ["Warning: header: stale", "Violation: save: reload differs"]
    assert notes[2].startswith("The recipe contract: ")
    rows = tables.contract_checks(report).splitlines()[1:]
    assert [row.split()[1] for row in rows] == ["warning", "VIOLATED", "ok"]
    assert tables.contract_notes({"checks": report["checks"][2:], "violations": []}) == []


def test_export_notes_compare_a_quantized_model_with_the_float_one():
    check = {"bytes": 1000, "examples": 64, "max_abs_diff": 0.01,
             "quantization": {"size_ratio": 0.25, "float_bytes": 4000,
                              "metrics": {"accuracy": 0.9, "loss": 0.3, "note": "x"},
                              "float_metrics": {"accuracy": 0.92, "loss": 0.28}}}
    notes = tables.export_notes(check, "int8")
    assert notes[0].startswith("Quantized int8: 1,000 bytes, 0.25x the float model's 4,000")
    assert notes[1] == "Test split: accuracy 0.9000 (float 0.9200), loss 0.3000 (float 0.2800)"


def test_export_notes_warn_when_quantization_grows_the_file_or_moves_a_metric():
    check = {"bytes": 3448, "examples": 36, "max_abs_diff": 0.7,
             "quantization": {"size_ratio": 1.14, "float_bytes": 3024,
                              "metrics": {"accuracy": 0.667, "loss": 0.9},
                              "float_metrics": {"accuracy": 0.806, "loss": 0.5}}}
    notes = tables.export_notes(check, "int8")
    warnings = [line for line in notes if line.startswith("Warning:")]
    assert len(warnings) == 2
    assert "1.14x the float one, not smaller" in warnings[0]
    # The loss moved too, but the accuracy is what judges a classifier.
    assert "accuracy from 0.8060 to 0.6670" in warnings[1] and "loss" not in warnings[1]
    check["quantization"].update(size_ratio=0.29, metrics={"accuracy": 0.80, "loss": 0.9})
    assert not [line for line in tables.export_notes(check, "int8")
                if line.startswith("Warning:")]
    # A model with a loss alone is judged by it.
    check["quantization"].update(metrics={"loss": 0.9}, float_metrics={"loss": 0.5})
    assert "loss from 0.5000 to 0.9000" in tables.export_notes(check, "int8")[-1]
