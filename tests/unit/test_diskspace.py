"""A full disk is recognised in any form and reported with the folder and sizes."""

import errno

import pytest

from kerasdl import diskspace


@pytest.mark.parametrize("error,full", [
    (OSError(errno.ENOSPC, "No space left on device"), True),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), True),
    (RuntimeError("write failed: errno = 28"), True),
    (diskspace.DiskFull("x"), True),
    (OSError(errno.EACCES, "Permission denied"), False),
    (ValueError("No space for it in the list"), False),
    (None, False),
])
def test_is_disk_full(error, full):
    assert diskspace.is_disk_full(error) is full


def test_is_disk_full_follows_the_cause():
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("saving failed") from inner
    except RuntimeError as outer:
        assert diskspace.is_disk_full(outer)
    try:
        try:
            raise OSError(errno.EACCES, "denied")
        except OSError:
            raise RuntimeError("saving failed")
    except RuntimeError as outer:
        assert not diskspace.is_disk_full(outer)


def test_ensure_raises_with_the_folder_and_megabytes(tmp_path):
    free = diskspace.free_bytes(tmp_path)
    diskspace.ensure(tmp_path / "not" / "yet", 0)  # a folder still to be made
    with pytest.raises(diskspace.DiskFull) as error:
        diskspace.ensure(tmp_path, free)
    message = str(error.value)
    assert repr(str(tmp_path)) in message
    assert f"{(free + diskspace.MARGIN) / 1e6:.1f} MB needed" in message
    assert "MB free" in message


def test_disk_full_message_names_the_folder(tmp_path):
    error = diskspace.disk_full(tmp_path, needed=5_000_000)
    assert isinstance(error, diskspace.DiskFull)
    assert repr(str(tmp_path)) in str(error) and "about 6.0 MB needed" in str(error)
