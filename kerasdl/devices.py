"""Devices: starting TensorFlow quietly and listing what it sees."""

import contextlib
import os
import sys
import tempfile

# TensorFlow's C++ start-up notices, written straight to file descriptor 2 before
# its logging is initialised (TF_CPP_MIN_LOG_LEVEL cannot hide them). They say
# nothing a user can act on; everything else written then is passed through.
_NOISE = (
    "WARNING: All log messages before absl::InitializeLog()",
    "I0000 ",
    "To enable the following instructions:",
)
_NO_GPU = "failed call to cuInit"


@contextlib.contextmanager
def _filtered_native_stderr():
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode(errors="replace").splitlines():
                if not line.startswith(_NOISE) and _NO_GPU not in line:
                    print(line, file=sys.stderr)


def start_tensorflow():
    """Imports TensorFlow and initialises its devices without the start-up notices.

    Returns:
        The names of the physical devices TensorFlow sees.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        with _filtered_native_stderr():
            import tensorflow as tf

            devices = tf.config.list_physical_devices()
    except OSError:  # no usable file descriptor 2 (embedded interpreters)
        import tensorflow as tf

        devices = tf.config.list_physical_devices()
    return [device.name for device in devices]
