import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from flame_transit._memo import ContentMemo, content_digest


def test_digest_sees_content_dtype_shape_and_structure():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert content_digest(a) == content_digest(a.copy()) == content_digest(torch.from_numpy(a.copy()))
    assert content_digest(a) != content_digest(a.astype(np.float64))
    assert content_digest(a) != content_digest(a.reshape(3, 2))
    assert content_digest(a) != content_digest(a[::-1])  # a strided view counts by its values
    assert content_digest([a, None]) != content_digest([a], None) != content_digest(a, None)
    assert content_digest(1) != content_digest(1.0) != content_digest("1") != content_digest(True)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 50)), max_size=40),
       st.one_of(st.none(), st.integers(0, 5)), st.one_of(st.none(), st.integers(0, 120)))
def test_memo_keeps_to_its_bounds_and_drops_the_least_recent(ops, max_items, max_bytes):
    memo = ContentMemo(max_items=max_items, max_bytes=max_bytes)
    model = {}  # key -> (value, nbytes) in recency order
    for key, nbytes in ops:
        if key % 3 == 0 and key in model:  # a read makes the entry the most recent
            assert memo.get(key) == model[key][0]
            model[key] = model.pop(key)
            continue
        memo.put(key, (key, nbytes), nbytes)
        if max_bytes is not None and nbytes > max_bytes:
            continue
        model.pop(key, None)
        model[key] = ((key, nbytes), nbytes)
        while model and ((max_items is not None and len(model) > max_items)
                         or (max_bytes is not None and sum(n for _, n in model.values()) > max_bytes)):
            model.pop(next(iter(model)))
    assert len(memo) == len(model)
    for key, (value, _) in list(model.items()):
        assert memo.get(key) == value


def test_memo_clear():
    memo = ContentMemo(max_items=2)
    memo.put("a", 1)
    memo.clear()
    assert len(memo) == 0 and memo.get("a") is None


@pytest.mark.parametrize("bad", [object()])
def test_digest_of_an_object_numpy_cannot_read_is_a_type_error(bad):
    with pytest.raises(TypeError):
        content_digest(bad)


def test_digest_of_tensors_needing_grad_and_of_empty_and_bool_arrays():
    t = torch.arange(4.0, requires_grad=True)
    assert content_digest(t) == content_digest(np.arange(4.0, dtype=np.float32))
    assert content_digest(np.zeros((0, 3))) != content_digest(np.zeros((3, 0)))
    assert content_digest(np.array([True, False])) != content_digest(np.array([False, True]))
