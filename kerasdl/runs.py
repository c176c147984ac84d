"""Run directories: creation, atomic artifact writes, and loading runs and models."""

import datetime
import json
import os
import tempfile
from pathlib import Path

from kerasdl.errors import RunError
from kerasdl.errors import UsageError
from kerasdl.locks import pid_alive

RUNS_ROOT = Path("runs")


def create_run_dir(recipe, output=None):
    """Creates a new, empty run directory and returns its path.

    With `output`, that folder is used if it does not exist or is empty; by default
    `runs/<recipe>/<timestamp>` (with a suffix if taken). An earlier run is never
    overwritten.

    Raises:
        UsageError: when `output` is an existing file or a folder that holds files.
    """
    if output is not None:
        path = check_output(output)
        path.mkdir(parents=True, exist_ok=True)
        return path
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    parent = RUNS_ROOT / recipe
    parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, 1000):
        path = parent / (stamp if attempt == 1 else f"{stamp}-{attempt}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RunError(f"Cannot create a new run folder under {str(parent)!r}.")


def check_output(output):
    """Checks that `output` can become a run directory: new, or an empty folder.

    Raises:
        UsageError: when it is an existing file or a folder that holds files.
    """
    path = Path(output)
    if path.is_file():
        raise UsageError(
            f"`--output` {str(path)!r} is an existing file; give a new or empty folder."
        )
    if path.is_dir() and any(path.iterdir()):
        from kerasdl import locks

        locks.refuse_if_held(path, "run")  # names the process working in it
        raise UsageError(
            f"`--output` folder {str(path)!r} already holds files; give a new or empty "
            "folder so nothing is overwritten."
        )
    return path


def _umask():
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path, write):
    """Writes a file through `write(tmp_path)` into a temporary file, then renames it.

    A crash never leaves a half-written file at `path`. The file gets the permissions
    of any file a tool writes (0644 under umask 022), not the temporary file's 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=path.suffix)
    os.fchmod(handle, 0o666 & ~_umask())
    os.close(handle)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(path, data):
    """Writes `data` as indented JSON, atomically."""
    text = json.dumps(data, indent=2, default=str) + "\n"
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_text(path, text):
    """Writes `text`, atomically."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def run_spec(run):
    """The spec in a run folder's config.json; {} for a model file or a folder without one."""
    config = Path(run) / "config.json"
    return (read_json(config).get("spec") or {}) if config.is_file() else {}


# What every config.json of a run holds; a file without them is damaged.
RUN_KEYS = ("recipe", "settings")
RUN_HINT = ("the run cannot be evaluated or resumed without it: restore the file from a "
            "backup, or train the run again")


class DamagedFileError(RunError):
    """A file kerasdl wrote that no longer reads: empty, truncated or overwritten."""


def read_json(path, required=(), hint="restore it from a backup, or remove it"):
    """Reads a JSON file kerasdl wrote, naming the file when it is damaged.

    Args:
        required: keys the file must hold (a mapping) to be usable.
        hint: what the user can do about a damaged file.

    Raises:
        DamagedFileError: for an empty, truncated or malformed file, or one without a
            `required` key.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text)
    except FileNotFoundError:
        raise RunError(f"File not found: {str(path)!r}.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        reason = "it is empty" if not path.read_bytes().strip() else (
            f"not valid JSON ({getattr(error, 'msg', error)}"
            + (f" at line {error.lineno}" if hasattr(error, "lineno") else "") + ")")
        raise DamagedFileError(f"{str(path)!r} is damaged: {reason}; {hint}.") from None
    except OSError as error:
        raise RunError(f"Cannot read {str(path)!r}: {error.strerror or error}.") from None
    missing = [key for key in required if not isinstance(data, dict) or key not in data]
    if missing:
        raise DamagedFileError(f"{str(path)!r} is damaged: it lacks {', '.join(missing)}; "
                               f"{hint}.")
    return data


def resolve_run(path):
    """Resolves a run directory or a model file.

    Returns:
        `(model_path, config)`: `config` is the run's config.json as a dict, or None
        for a bare model file.

    Raises:
        RunError: when the path does not exist or holds no model, or is remote.
    """
    if "://" in str(path):
        raise RunError(f"Models are loaded from local files only. Received: {str(path)!r}")
    path = Path(path)
    if path.is_dir():
        model_path = path / "model.keras"
        config_path = path / "config.json"
        if not model_path.is_file():
            status = ""
            if config_path.is_file():
                status = read_json(config_path, RUN_KEYS, RUN_HINT).get("status", "")
                status = f" (run status: {status})" if status else ""
            raise RunError(f"Run folder {str(path)!r} holds no model.keras{status}.")
        config = read_json(config_path, RUN_KEYS, RUN_HINT) if config_path.is_file() else None
        return model_path, config
    if path.is_file():
        if path.suffix not in (".keras", ".h5", ".hdf5"):
            raise RunError(f"Not a run folder or .keras model file: {str(path)!r}.")
        return path, None
    raise RunError(f"Run folder or model file not found: {str(path)!r}.")


def process_alive(config):
    """Tells whether the process that wrote a run's config.json still runs (same host)."""
    import platform

    pid = config.get("pid")
    if not pid or config.get("host") != platform.node():
        return None
    return pid_alive(pid)


def run_status(config):
    """A run's status; `running` whose process is gone reads `killed`."""
    status = config.get("status", "unknown")
    if status == "running" and process_alive(config) is False:
        return "killed"
    return status


def resumable(path):
    """Reads the config of a run that `kerasdl train --resume` can continue.

    Raises:
        RunError: when the path is not a run, the run completed, or it still runs.
    """
    path = Path(path)
    config_path = path / "config.json"
    if not config_path.is_file():
        raise RunError(f"Not a run directory (no config.json): {str(path)!r}.")
    config = read_json(config_path, RUN_KEYS, RUN_HINT)
    status = run_status(config)
    if status == "completed":
        raise RunError(f"Run {str(path)!r} already completed; nothing to resume.")
    if status == "running":
        raise RunError(f"Run {str(path)!r} is still running (process {config.get('pid')}).")
    return config


def list_runs(root=RUNS_ROOT):
    """Returns one dict per run directory under `root`: path, recipe, status, created, test."""
    found = []
    for config_path in sorted(Path(root).glob("**/config.json")):
        if (config_path.parent / "search.json").exists():
            continue
        metrics_path = config_path.parent / "metrics.json"
        try:  # a run whose files no longer read is listed as damaged, not dropped
            config = read_json(config_path, RUN_KEYS)
            status = run_status(config)
            test = {}
            if metrics_path.is_file():
                test = read_json(metrics_path).get("test", {})
            model_path = config_path.parent / "model.keras"
            if status == "completed" and not _looks_like_keras_file(model_path):
                status = "damaged"
        except RunError:
            if not _holds_run_files(config_path.parent) and _parses(config_path):
                continue  # some other tool's config.json, not a run
            config, status, test = {}, "damaged", {}
        if not isinstance(config, dict) or not isinstance(test, dict):
            config, status, test = {}, "damaged", {}
        found.append({"path": str(config_path.parent), "recipe": config.get("recipe", "?"),
                      "status": status, "created": config.get("created", ""),
                      "test": test})
    return found


def _holds_run_files(folder):
    return any((folder / name).exists() for name in ("model.keras", "history.csv",
                                                      "metrics.json", "backup"))


def _parses(path):
    try:
        json.loads(Path(path).read_text(encoding="utf-8"))
        return True
    except (OSError, ValueError):
        return False


def _looks_like_keras_file(path):
    """Whether `path` is a whole .keras archive (a zip file whose directory reads)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return "config.json" in archive.namelist()
    except (OSError, zipfile.BadZipFile, EOFError):
        return False


def load_model(model_path, unsafe=False):
    """Loads a local .keras model in Keras safe mode.

    Args:
        unsafe: allow what safe mode refuses (Python code inside the file, such as a
            Lambda layer) and legacy HDF5 files. Only for files the user trusts.

    Raises:
        RunError: for a remote path, a legacy .h5 file or a model that needs unsafe
            deserialization (unless `unsafe`), or a file that is not a loadable model.
    """
    import warnings

    import keras

    model_path = Path(model_path)
    if "://" in str(model_path):
        raise RunError(f"Models are loaded from local files only. Received: {str(model_path)!r}")
    if not model_path.is_file():
        raise RunError(f"Model file not found: {str(model_path)!r}.")
    if model_path.suffix == ".keras" and not _looks_like_keras_file(model_path):
        size = model_path.stat().st_size
        reason = "it is empty" if size == 0 else f"not a whole .keras archive ({size:,} bytes)"
        raise DamagedFileError(
            f"Model file {str(model_path)!r} is damaged: {reason}. It cannot be loaded; "
            "restore it from a backup, or train the run again (an interrupted run: "
            "`kerasdl train --resume RUN`).")
    if model_path.suffix in (".h5", ".hdf5") and not unsafe:
        raise RunError(
            f"Refusing legacy HDF5 model {str(model_path)!r}: the format has a history of "
            "code-execution flaws. Re-save it as .keras, or pass --unsafe if you trust it."
        )
    try:
        with warnings.catch_warnings():
            # A compiled optimizer that training never used (a GAN's, whose own two
            # optimizers do the work) has no saved state; nothing is lost for kerasdl.
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            return keras.saving.load_model(model_path, safe_mode=not unsafe)
    except Exception as error:  # Keras raises many kinds for a bad file
        text = str(error).strip()
        if "safe_mode" in text or "unsafe" in text.lower():
            raise RunError(
                f"Refusing {str(model_path)!r}: loading it would run Python code stored in "
                "the file (a Lambda layer or similar). Pass --unsafe only if you trust "
                "where it came from."
            ) from None
        first = text.splitlines()[0][:200] if text else type(error).__name__
        raise RunError(f"Cannot load model {str(model_path)!r}: {first}") from None
