"""The cache choice of image data and the memory refusal, from their estimates."""

import pytest

from kerasdl import settings
from kerasdl.data import images
from kerasdl.errors import UsageError

GIB = 2 ** 30


def test_decoded_bytes_counts_every_pixel_of_every_image():
    assert images.decoded_bytes(10, (64, 32), 3) == 10 * 64 * 32 * 3 * 4
    assert images.decoded_bytes(10, (64, 32), 1, bytes_per_value=1) == 10 * 64 * 32


@pytest.mark.parametrize("count, memory, disk_free, expected", [
    # 2,000 64x64 colour images: 94 MiB as float32, within 1/32 of 8 GiB.
    (2_000, 8 * GIB, 100 * GIB, "memory"),
    # 16,000: 750 MiB, over the budget; 188 MiB of uint8 on a roomy disk.
    (16_000, 8 * GIB, 100 * GIB, "file"),
    # The same with a disk that cannot hold the uint8 images twice over.
    (16_000, 8 * GIB, 300 * 2 ** 20, "none"),
    # No cache folder at all.
    (16_000, 8 * GIB, None, "none"),
    # Memory unknown: cache as recipes always did.
    (16_000, None, None, "memory"),
])
def test_cache_choice_follows_the_estimate(count, memory, disk_free, expected):
    assert images.cache_choice(count, (64, 64), 3, memory, disk_free) == expected


def test_cache_choice_boundary_is_the_memory_budget():
    size = images.decoded_bytes(1000, (32, 32), 3)
    budget_memory = int(size / images.MEMORY_FRACTION)
    assert images.cache_choice(1000, (32, 32), 3, budget_memory, 10 * GIB) == "memory"
    assert images.cache_choice(1000, (32, 32), 3, budget_memory - 64, 10 * GIB) == "file"


def test_check_memory_counts_the_cache_only_when_it_is_in_memory():
    shape, count = [256, 256, 3], 10_000  # 7.3 GiB of float32 images
    with pytest.raises(UsageError) as error:
        settings.check_memory({"batch_size": 32}, shape, count, "memory", memory=4 * GIB)
    message = str(error.value)
    assert "7.3 GiB" in message or "7.4 GiB" in message, message
    assert "cached in memory" in message and "4.0 GiB is available" in message
    assert "--image-size" in message and "--batch-size" in message
    # A file cache or none keeps only batches and the shuffle buffer: 32 x 4 x 0.75 MiB
    # and 256 images (8 batches: 64 MiB is fewer images) fit.
    settings.check_memory({"batch_size": 32}, shape, count, "file", memory=4 * GIB)
    settings.check_memory({"batch_size": 32}, shape, count, "none", memory=4 * GIB)


def test_check_memory_refuses_a_huge_image_size_whatever_the_cache():
    # 4 batches of 32 (96 GiB) and a shuffle buffer of the 24 images (18 GiB).
    with pytest.raises(UsageError, match="8192x8192 needs at least 114.0 GiB.*decoded each epoch"):
        settings.check_memory({"batch_size": 32}, [8192, 8192, 3], 24, "none",
                              memory=16 * GIB)


def test_shuffle_buffer_holds_64_mib_of_images_and_at_least_8_batches():
    assert images.shuffle_buffer((64, 64), 3, 32) == 64 * 2 ** 20 // (64 * 64 * 3 * 4)  # 1365
    assert images.shuffle_buffer((224, 224), 3, 32) == 8 * 32  # 588 KiB images: 8 batches
    assert images.shuffle_buffer((8, 8), 1, 32) > 4096  # small images: the recipe's own bound


def test_a_float32_file_cache_needs_four_times_the_disk():
    # 16,000 64x64 colour images: 188 MiB as uint8, 750 MiB as float32 (a TFDS image
    # feature that is not uint8); the disk must hold the file cache twice over.
    disk_free = 2 * images.decoded_bytes(16_000, (64, 64), 3, 1)
    assert images.cache_choice(16_000, (64, 64), 3, 8 * GIB, disk_free) == "file"
    assert images.cache_choice(16_000, (64, 64), 3, 8 * GIB, disk_free,
                               file_bytes_per_value=4) == "none"
    assert images.cache_choice(16_000, (64, 64), 3, 8 * GIB, 4 * disk_free,
                               file_bytes_per_value=4) == "file"
