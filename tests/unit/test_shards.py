"""Each worker's share of the training split (`kerasdl.data.shards`), and the CSV rows a
share reads (`kerasdl.data.streaming`): pure functions, no TensorFlow."""

import numpy as np
import pytest

from kerasdl.data import shards
from kerasdl.data import streaming
from kerasdl.errors import DataError


@pytest.mark.parametrize("count, workers", [(10, 2), (11, 2), (10, 3), (11, 4), (7, 7),
                                            (1000, 3), (1, 1)])
def test_shard_positions_are_equal_disjoint_and_cover(count, workers):
    shares = [shards.shard_positions(count, index, workers) for index in range(workers)]
    size = -(-count // workers)
    assert all(len(share) == size for share in shares)
    distinct = [set(share.tolist()) for share in shares]
    assert set().union(*distinct) == set(range(count))
    assert sum(len(share) for share in distinct) == count  # disjoint as sets
    # Repeats fill the remainder only: at most one per worker, each of its own.
    assert sum(len(share) - len(set(share.tolist())) for share in shares) == size * workers - count


def test_shard_positions_stride_so_every_worker_gets_every_class():
    labels = np.repeat([0, 1, 2], 20)  # a folder's listing is in class order
    for index in range(4):
        share = shards.shard_positions(len(labels), index, 4)
        assert set(labels[share]) == {0, 1, 2}
    assert shards.shard_positions(10, 1, 4).tolist() == [1, 5, 9]
    assert shards.shard_positions(10, 3, 4).tolist() == [3, 7, 3]  # its own first again


@pytest.mark.parametrize("count, workers", [(10, 2), (11, 2), (10, 3), (11, 4), (5, 5),
                                            (1001, 8)])
def test_shard_range_is_contiguous_equal_and_covers(count, workers):
    ranges = [shards.shard_range(count, index, workers) for index in range(workers)]
    size = -(-count // workers)
    assert ranges[0][0] == 0 and ranges[-1][1] == count
    for (start, stop, repeat), following in zip(ranges, ranges[1:] + [(count,)]):
        assert stop == following[0]  # contiguous, no gap, no overlap
        assert stop - start + repeat == size and repeat in (0, 1)
    assert sum(repeat for _, _, repeat in ranges) == size * workers - count


def test_fewer_examples_than_workers_is_a_clear_error():
    with pytest.raises(DataError, match="Cannot share 2 training example.*3 workers"):
        shards.shard_positions(2, 0, 3)
    with pytest.raises(DataError, match="at most 2 worker"):
        shards.shard_range(2, 1, 3)
    with pytest.raises(ValueError, match="index"):
        shards.shard_range(10, 2, 2)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_csv_row_spans_hold_exactly_each_share_of_training_rows(workers):
    settings = {"split_seed": 5, "test_split": 0.2, "validation_split": 0.2}
    total = 2_345
    names = streaming.split_names(np.arange(total), settings)
    train_rows = np.flatnonzero(names == 0)
    seen = []
    for index in range(workers):
        start, stop, _ = shards.shard_range(len(train_rows), index, workers)
        # Small blocks: a share's rows that straddle blocks are found too.
        first, end = streaming._train_rows(total, settings, start, stop, block=100)
        rows = np.arange(first, end)
        inside = rows[names[first:end] == 0]
        assert inside.tolist() == train_rows[start:stop].tolist()
        assert names[first] == 0 and names[end - 1] == 0  # no rows read for nothing
        seen.extend(inside.tolist())
    assert seen == train_rows.tolist()


def test_csv_row_range_reader_numbers_rows_as_the_whole_file_does(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("x,label\n" + "".join(f"{i},{'ab'[i % 2]}\n" for i in range(50)))
    types = {"x": "number"}
    whole = {row: x for chunk in streaming._reader(path, {}, types, "label",
                                                   "classification", 7)
             for row, x in zip(chunk.index, chunk["x"])}
    part = [(row, x) for chunk in streaming._reader(path, {}, types, "label",
                                                    "classification", 7, rows=(13, 31))
            for row, x in zip(chunk.index, chunk["x"])]
    assert [row for row, _ in part] == list(range(13, 31))
    assert all(whole[row] == x for row, x in part)


@pytest.mark.parametrize("text, blank", [
    ("x,label\n1,a\n2,b\n", False),
    ("x,label\r\n1,a\r\n2,b\r\n", False),
    ("x,label\n1,a\n\n2,b\n", True),
    ("x,label\r\n1,a\r\n \r\n2,b\r\n", True),
    ("\nx,label\n1,a\n", True),
])
def test_blank_lines_are_found_and_the_range_reader_stays_right_with_them(tmp_path, text,
                                                                          blank):
    path = tmp_path / "rows.csv"
    path.write_bytes(text.encode() + "".join(f"{i},{'ab'[i % 2]}\n"
                                             for i in range(3, 40)).encode())
    assert streaming.blank_lines(path, block=5) == blank
    types = {"x": "number"}
    whole = [(row, x) for chunk in streaming._reader(path, {}, types, "label",
                                                     "classification", 7)
             for row, x in zip(chunk.index, chunk["x"])]
    part = [(row, x) for chunk in streaming._reader(path, {}, types, "label",
                                                    "classification", 7,
                                                    rows=(5, 20, not blank))
            for row, x in zip(chunk.index, chunk["x"])]
    assert part == whole[5:20]
    path.write_bytes(path.read_bytes() + b"\n \n")  # at the end: no row after them
    assert streaming.blank_lines(path, block=5) == blank


def test_a_training_split_changed_after_loading_has_no_worker_shares():
    from kerasdl.data.splits import Splits

    train = object()
    splits = Splits(train, None, None, {}, shard=(train, lambda index, workers: (index, workers)))
    assert splits.shardable and splits.worker_share(1, 2) == (1, 2)
    splits.train = object()  # filtered by class, limited, resampled
    assert not splits.shardable and splits.worker_share(1, 2) is None
    assert Splits(train, None, None, {}).worker_share(0, 2) is None  # data in memory
