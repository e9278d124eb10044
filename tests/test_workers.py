"""estm_core/workers.py: the ordered pool."""

import time

from estm_core.workers import in_order


def slower_first(item: int) -> int:
    time.sleep(0.02 * (6 - item))  # the first items finish last
    return item * item


def test_in_order_yields_in_the_items_order_in_this_process_and_in_workers():
    items = list(range(7))
    assert list(in_order(slower_first, items, jobs=1)) == [item * item for item in items]
    assert list(in_order(slower_first, items, jobs=2)) == [item * item for item in items]
    assert list(in_order(slower_first, [], jobs=2)) == []


def test_a_caller_may_stop_early():
    results = in_order(slower_first, list(range(7)), jobs=2)
    assert next(results) == 0
    results.close()  # the pending items are cancelled and the pool shut down, no hang
