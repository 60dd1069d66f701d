import pytest
import torch

from flame_transit._threads import SMALL_WORK, one_thread


def test_one_thread_restores_the_count_even_on_error():
    before = torch.get_num_threads()
    with pytest.raises(ValueError):
        with one_thread(blas=True):
            assert torch.get_num_threads() == 1
            raise ValueError("inside")
    assert torch.get_num_threads() == before


def test_small_work_splits_open_head_clips_from_flame_ones():
    # 60 frames of the open head (585 vertices) are small, 60 FLAME frames (5023) are not
    assert 60 * 585 < SMALL_WORK < 60 * 5023


def test_the_count_is_the_calling_threads_own():
    import threading

    before = torch.get_num_threads()
    seen = []

    def worker():
        with one_thread():
            seen.append(torch.get_num_threads())

    t = threading.Thread(target=worker)
    t.start()
    t.join(10)
    assert seen == [1] and torch.get_num_threads() == before  # the other thread's block left ours as it was
