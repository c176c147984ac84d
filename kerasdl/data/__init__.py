"""Data sources: every source yields train, validation and test tf.data.Datasets and a spec.

A data argument names its source:
- an embedded data set (`digits`, `auto_mpg`, `diabetes`): shipped inside installed
  packages, no network;
- `tfds:NAME`: a TensorFlow Datasets data set (`data_dir` for a local copy);
- a CSV file (pandas; `target` names the column to predict);
- an image folder with one sub-folder per class (images at any depth below a class
  sub-folder belong to it).

New data for a trained model is read with the run's schema by `frame_to_inputs`
(tabular rows, sequences, series) and `load_images`.

Datasets are unbatched `(features, label)` pairs; images are float32 in [0, 255].
Splits are drawn with a fixed seed (`split_seed`, in `kerasdl.data.splits`), independent
of the training seed, so runs with different seeds are evaluated on the same test examples.
"""

from kerasdl.data.sources import EMBEDDED
from kerasdl.data.sources import describe_sources
from kerasdl.data.sources import load_data
from kerasdl.data.splits import Splits
from kerasdl.data.splits import split_indices
from kerasdl.data.tabular import features_from_frame
from kerasdl.data.tabular import frame_to_features
from kerasdl.data.tabular import frame_to_inputs
from kerasdl.data.tabular import read_csv
from kerasdl.data.images import IMAGE_EXTENSIONS
from kerasdl.data.images import load_images

__all__ = [
    "EMBEDDED",
    "IMAGE_EXTENSIONS",
    "Splits",
    "describe_sources",
    "features_from_frame",
    "frame_to_features",
    "frame_to_inputs",
    "load_data",
    "load_images",
    "read_csv",
    "split_indices",
]
