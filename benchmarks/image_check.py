"""Times the check that decodes every image of a folder before training.

Writes FOLDER (2,000 random 64x64 PNG and JPEG files in two class folders, plus an
undecodable .png and an empty .jpg) unless it exists, then times
`kerasdl.data.images.find_bad_images` over it and prints files/s.

Usage:
    python benchmarks/image_check.py /tmp/image-check
"""

import sys
import time
from pathlib import Path

import numpy as np


def make_folder(root, count=2000):
    from PIL import Image

    rng = np.random.default_rng(0)
    for index in range(count):
        folder = root / f"class{index % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (64, 64, 3)).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{index}.{'png' if index % 2 else 'jpg'}")
    (root / "class0" / "broken.png").write_bytes(b"x" * 100)
    (root / "class1" / "empty.jpg").write_bytes(b"")


def main(root):
    from kerasdl.data.images import IMAGE_EXTENSIONS
    from kerasdl.data.images import find_bad_images

    root = Path(root)
    if not root.exists():
        make_folder(root)
    paths = sorted(str(p) for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    find_bad_images(paths[:50])  # TensorFlow's start-up is not the check's cost
    start = time.perf_counter()
    bad = find_bad_images(paths)
    elapsed = time.perf_counter() - start
    print(f"{len(paths)} files, {len(bad)} undecodable, {elapsed:.2f} s, "
          f"{len(paths) / elapsed:,.0f} files/s")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "image-check")
