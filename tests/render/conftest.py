import pytest
import torch


@pytest.fixture(scope="session")
def gl_renderer():
    from flame_transit.render import get_renderer

    r = get_renderer("gl")
    yield r
    r.close()


@pytest.fixture(scope="session")
def open_head():
    from flame_transit.head import load_head

    return load_head()


@pytest.fixture(scope="session")
def astronaut(open_head):
    """(photo, FaceParams) of skimage's astronaut encoded with the open head."""
    import skimage.data
    from flame_transit.encode import encode

    img = skimage.data.astronaut()
    return img, encode(img, open_head)


def aus(head, **values):
    e = torch.zeros(head.num_expression)
    for k, v in values.items():
        e[list(head.expression_names).index(k)] = v
    return e


@pytest.fixture(scope="session")
def astronaut_clip(open_head, astronaut):
    """Vertices (4, V, 3): source expression, neutral, jaw open (surprise), closed lids."""
    img, p = astronaut
    ex = torch.stack([p.expression, aus(open_head), aus(open_head, AU1=1, AU2=1, AU5=1, AU25=1),
                      p.expression + aus(open_head, AU43=1)])
    pose = p.pose.repeat(4, 1)
    pose[1:3, 6:9] = 0
    pose[2, 6] = 0.25
    with torch.no_grad():
        v = open_head(shape=p.shape, expression=ex, pose=pose, offsets=p.offsets).vertices.numpy()
    return v
