"""The serving batcher on a plain NumPy function: batches, order, carried requests."""

import asyncio

import numpy as np

from kerasdl.serve import Batcher


def _serve(predict, sizes, max_batch, window_ms=30):
    async def main():
        batcher = Batcher(predict, max_batch=max_batch, window_ms=window_ms)
        worker = asyncio.create_task(batcher.run())
        requests = [np.arange(size, dtype=np.float32)[:, None] + 100 * index
                    for index, size in enumerate(sizes)]
        try:
            answers = await asyncio.gather(*(batcher.submit(r) for r in requests),
                                           return_exceptions=True)
        finally:
            worker.cancel()
            batcher.executor.shutdown()
        return requests, answers, batcher.batches

    return asyncio.run(main())


def test_a_request_that_does_not_fit_opens_the_next_batch():
    requests, answers, batches = _serve(lambda x: x * 3, [3, 3, 1], max_batch=4)
    for request, answer in zip(requests, answers):
        np.testing.assert_array_equal(answer, request * 3)
    assert batches == [3, 4]  # the second request is carried, the third joins it


def test_concurrent_requests_run_as_one_batch():
    requests, answers, batches = _serve(lambda x: x.sum(axis=1, keepdims=True) - 1,
                                        [1, 2, 1, 1], max_batch=64)
    assert batches == [5]
    for request, answer in zip(requests, answers):
        np.testing.assert_array_equal(answer, request - 1)


def test_a_failing_batch_fails_each_of_its_requests():
    def broken(batch):
        raise ValueError(f"cannot take {len(batch)} rows")

    _, answers, batches = _serve(broken, [2, 2], max_batch=8)
    assert batches == []
    assert [str(answer) for answer in answers] == ["cannot take 4 rows"] * 2
    assert all(isinstance(answer, ValueError) for answer in answers)
