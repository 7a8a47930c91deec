"""lookalike.batching.batched: the one batching helper of the core, the indexer and the stores."""

import pytest

from lookalike.batching import batched


def test_batches_keep_order_and_the_last_one_is_shorter():
    assert list(batched(iter(range(7)), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(batched({"a": 1, "b": 2}, 5)) == [["a", "b"]]
    assert list(batched([], 4)) == []


def test_a_batch_size_below_one_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        list(batched([1, 2], 0))
