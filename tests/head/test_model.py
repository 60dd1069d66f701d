import torch

from flame_transit._threads import SMALL_WORK
from flame_transit.head import load_head
from flame_transit.head import model as head_model


def test_small_forwards_run_on_one_thread_and_large_ones_on_the_callers(monkeypatch):
    head = load_head()
    seen = []
    real = head_model.lbs_forward
    monkeypatch.setattr(head_model, "lbs_forward", lambda *a, **k: seen.append(torch.get_num_threads()) or real(*a, **k))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        small = SMALL_WORK // head.num_vertices - 1
        large = SMALL_WORK // head.num_vertices + 1
        for frames in (small, large):
            out = head(expression=torch.zeros(frames, head.num_expression))
            assert out.vertices.shape == (frames, head.num_vertices, 3)
        assert seen == [1, 2] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
