"""The check shared by the PyTorch3D backend's tests (stand-in and real library): rasterising
all layers of a frame in one call gives what rasterising each layer alone gives."""

import numpy as np
import torch


def check_batch_is_each_layer_alone(renderer) -> None:
    from flame_transit.render.backends.raster import RasterRenderer

    renderer._size = (24, 32)
    tri = np.array([[0, 1, 2], [0, 2, 3]])
    square = np.array([[4.0, 4.0], [20.0, 4.0], [20.0, 18.0], [4.0, 18.0]], np.float32)
    layers = [(square, np.full(4, 2.0, np.float32), tri),
              (square + 6.0, np.full(4, 1.0, np.float32), tri[::-1].copy()),
              (square[:3] - 2.0, np.ones(3, np.float32), tri[:1])]
    batched = renderer._rasterize_layers(layers)
    alone = RasterRenderer._rasterize_layers(renderer, layers)  # one call per layer
    assert len(batched) == len(alone) == len(layers)
    for (p2f, bary, zb), (p2f1, bary1, zb1), (_, _, faces) in zip(batched, alone, layers):
        assert torch.equal(p2f, p2f1) and torch.allclose(bary, bary1) and torch.allclose(zb, zb1)
        assert int(p2f.max()) == len(faces) - 1 and int(p2f.min()) == -1  # local face ids, empty pixels
