"""Renderer backends: each rasterises :class:`~flame_transit.render.types.Frame` draw lists."""
