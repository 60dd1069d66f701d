"""OpenGL backend: moderngl on a headless EGL context.

On a CPU-only Linux machine this runs on Mesa's llvmpipe (Debian packages ``libegl1 libgl1
libgl1-mesa-dri``); on a machine with an NVIDIA driver the same code runs on the GPU's EGL.
One context, three shader programs (:mod:`.gl_shaders`), a (multisampled) framebuffer, a
supersample framebuffer for the frame's edge box and dynamic vertex / index buffers are created
once and reused for every frame; only the vertex data changes. Textures are shared in the
context by content (:mod:`.gl_textures`): the next clip of a photo uploads none. A frame is
submitted (every pass issued, then ``glFlush``) and read back at the next one, so llvmpipe's
threads rasterise it while Python builds the next frame.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from ..._memo import content_digest
from ...errors import RendererUnavailableError
from ..base import Renderer
from ..camera import points_box
from ..types import Frame, Layer
from .gl_shaders import EDGE_FS, EDGE_VS, LIT_FS, LIT_VS, MOUTH_SUPERSAMPLE, PHOTO_FS, PHOTO_PLAIN_FS, PHOTO_VS
from .gl_textures import SharedTextures, rgba

__all__ = ["GLRenderer", "INSTALL_HINT"]

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "the 'gl' renderer needs an EGL/OpenGL library: on Debian/Ubuntu run "
    "`apt-get install libegl1 libgl1 libgl1-mesa-dri` (Mesa's llvmpipe renders on the CPU; "
    "an NVIDIA driver provides its own EGL); or install PyTorch3D and use renderer='pytorch3d'"
)

#: one GL context per (backend, options) for the whole process: glcontext's EGL backend
#: terminates the shared EGL display when a context is released, which would break every other
#: renderer, so contexts are created once and kept (each renderer owns only its GL objects)
_CONTEXTS: Dict[Tuple[Any, ...], Any] = {}


def _shared_context(backend: str, kwargs: Dict[str, Any]):
    key = (backend, tuple(sorted((k, repr(v)) for k, v in kwargs.items())))
    ctx = _CONTEXTS.get(key)
    if ctx is None:
        import moderngl

        opts = dict(kwargs)
        if backend:
            opts["backend"] = backend
        ctx = moderngl.create_standalone_context(require=330, **opts)
        info = ctx.info
        log.info("gl renderer: %s (%s), vendor %s", info.get("GL_RENDERER", "?"), info.get("GL_VERSION", "?"),
                 info.get("GL_VENDOR", "?"))
        _CONTEXTS[key] = ctx
    return ctx


def _gl_flush(kwargs: Dict[str, Any]) -> Callable[[], None]:
    return _gl_flush_of(os.environ.get("GLCONTEXT_LINUX_LIBGL") or kwargs.get("libgl") or "")


@functools.lru_cache(maxsize=8)
def _gl_flush_of(libgl: str) -> Callable[[], None]:
    """``glFlush`` of the library the context's functions come from (glcontext resolves them
    in ``$GLCONTEXT_LINUX_LIBGL``, else the ``libgl`` option, else the system libGL): it hands
    the queued draws to the rasteriser without waiting (llvmpipe then rasterises on its own
    threads while Python builds the next frame). A no-op when it cannot be found: it only
    overlaps work, reading back still waits."""
    import ctypes
    import ctypes.util

    name = libgl or ctypes.util.find_library("GL")  # once per process: it runs ldconfig
    try:
        flush = ctypes.CDLL(name).glFlush
    except (OSError, AttributeError, TypeError) as exc:
        log.debug("gl renderer: no glFlush in %r (%s); frames are drawn without overlap", name, exc)
        return lambda: None
    flush.restype = None
    flush.argtypes = []
    return flush


class GLRenderer(Renderer):
    """moderngl renderer (EGL, headless).

    Args:
        samples: multisample anti-aliasing samples (0 = off; capped by the driver); default:
            4 on a GPU, 0 on Mesa's CPU rasteriser (where 4x MSAA costs ~3x the frame time).
        backend: glcontext backend, ``"egl"`` (headless) by default.
        **context_kwargs: passed to ``moderngl.create_standalone_context`` (e.g. ``libegl``,
            ``libgl``, ``device_index``).

    Raises:
        RendererUnavailableError: at the first frame, when no OpenGL 3.3 context can be created.
    """

    name = "gl"

    def __init__(self, samples: Optional[int] = None, backend: str = "egl", **context_kwargs: Any) -> None:
        self.samples = None if samples is None else int(samples)
        self.backend = backend
        self.context_kwargs = context_kwargs
        self.ctx = None
        self._progs: Dict[str, Any] = {}
        self._fbo_size: Optional[Tuple[int, int]] = None
        self._fbo = None
        self._resolve = None
        self._bufs: Dict[Tuple[str, str], Dict[str, Any]] = {}  # vertex buffers, per layer
        self._indices: Dict[Tuple[str, str, str], Dict[str, Any]] = {}  # index buffers, per layer, program and pass
        self._pass = "main"
        self._quads: Dict[Tuple[int, int], np.ndarray] = {}
        self._textures: Dict[str, Any] = {}  # by name, for this clip
        self._held: List[Tuple[str, bool]] = []  # keys of the shared textures it uses (gl_textures.SharedTextures)
        self._digests: Dict[int, str] = {}  # this clip's textures' content digests, by id
        self._arrays: Dict[str, np.ndarray] = {}  # the textures' pixels (the photo: the backdrop)
        self._plain: Optional[np.ndarray] = None  # a frame of the clear colour
        self._plain_key: Any = None
        self._gl_renderer = ""
        self._ss_fbo = None
        self._ss_size: Tuple[int, int] = (0, 0)
        self._target = None  # the framebuffer being drawn
        self._region: Tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)

    # -- context ---------------------------------------------------------------------------------
    def _context(self):
        if self.ctx is not None:
            return self.ctx
        try:
            import moderngl  # noqa: F401  (only: is it installed?)
        except ImportError as exc:
            raise RendererUnavailableError(f"moderngl is not installed (`pip install moderngl`); {INSTALL_HINT}") from exc
        try:
            ctx = _shared_context(self.backend, self.context_kwargs)
        except Exception as exc:  # glcontext raises plain Exceptions / OSError
            raise RendererUnavailableError(
                f"could not create an OpenGL context (backend={self.backend!r}): {exc}; {INSTALL_HINT}"
            ) from exc
        self.ctx = ctx
        info = ctx.info
        self._gl_renderer = f"{info.get('GL_RENDERER', '?')} ({info.get('GL_VERSION', '?')})"
        max_samples = int(info.get("GL_MAX_SAMPLES", 0) or 0)
        if self.samples is None:
            software = any(k in str(info.get("GL_RENDERER", "")).lower() for k in ("llvmpipe", "softpipe", "swrast"))
            self.samples = 0 if software else 4
        if self.samples > max_samples:
            self.samples = max_samples
        self._uniform_values: Dict[Tuple[str, str], Any] = {}
        self._flush = _gl_flush(self.context_kwargs)
        self._progs["lit"] = ctx.program(vertex_shader=LIT_VS, fragment_shader=LIT_FS)
        self._progs["photo"] = ctx.program(vertex_shader=PHOTO_VS, fragment_shader=PHOTO_FS)
        self._progs["plain"] = ctx.program(vertex_shader=PHOTO_VS, fragment_shader=PHOTO_PLAIN_FS)
        self._progs["edges"] = ctx.program(vertex_shader=EDGE_VS, fragment_shader=EDGE_FS)
        return ctx

    @property
    def device_info(self) -> str:
        return f"gl: {self._gl_renderer}" if self._gl_renderer else "gl (not started)"

    def _framebuffer(self, size: Tuple[int, int]):
        ctx = self.ctx
        if self._fbo_size == size:
            return
        for fbo in {id(f): f for f in (self._fbo, self._resolve) if f is not None}.values():
            _release_framebuffer(fbo)
        h, w = size
        if self.samples > 1:
            self._fbo = ctx.framebuffer(
                color_attachments=[ctx.renderbuffer((w, h), 4, samples=self.samples)],
                depth_attachment=ctx.depth_renderbuffer((w, h), samples=self.samples),
            )
            self._resolve = ctx.framebuffer(color_attachments=[ctx.renderbuffer((w, h), 4)])
        else:
            self._fbo = ctx.framebuffer(
                color_attachments=[ctx.renderbuffer((w, h), 4)],
                depth_attachment=ctx.depth_renderbuffer((w, h)),
            )
            self._resolve = self._fbo
        self._fbo_size = size
        self._readbuf = bytearray(w * h * 3)

    # -- per clip --------------------------------------------------------------------------------
    def _begin(self, size: Tuple[int, int], textures: Dict[str, np.ndarray]) -> None:
        self._context()
        self._framebuffer(tuple(size))
        self._release_textures()
        for name, img in textures.items():
            img = np.ascontiguousarray(img, dtype=np.uint8)
            self._arrays[name] = img
            self._textures[name] = self._texture(img, nearest=False)
        self._size = tuple(size)

    def _texture(self, img: np.ndarray, nearest: bool):
        """The texture of ``(H, W, 3)`` uint8 ``img``, shared in the context by content
        (:class:`.gl_textures.SharedTextures`)."""
        import moderngl

        shared = SharedTextures.of(self.ctx)
        key = (self._digests.get(id(img)) or content_digest(img), nearest)
        self._digests[id(img)] = key[0]  # (the twin of a texture has its pixels)
        tex = shared.acquire(key)
        if tex is None:
            h, w = img.shape[:2]
            tex = self.ctx.texture((w, h), 4, rgba(img))
            tex.filter = (moderngl.NEAREST, moderngl.NEAREST) if nearest else (moderngl.LINEAR, moderngl.LINEAR)
            tex.repeat_x = tex.repeat_y = False
            shared.add(key, tex)
        self._held.append(key)
        return tex

    def _backdrop_texture(self, name: str) -> str:
        """A nearest-filtered twin of texture ``name`` when it has the frame's size: painted
        1:1 as the background it samples texel centres, where nearest equals linear, and
        llvmpipe fills it in about half the time."""
        twin = name + "#nearest"
        if twin not in self._textures:
            img = self._arrays.get(name)
            if img is None or img.shape[:2] != tuple(self._size):
                return name
            self._textures[twin] = self._texture(img, nearest=True)
        return twin

    def _release_textures(self) -> None:
        shared = SharedTextures.of(self.ctx) if self.ctx is not None else None
        if shared is not None:
            for key in self._held:
                shared.release(key)
        self._held = []
        self._digests = {}
        self._textures = {}
        self._arrays = {}

    def _end(self) -> None:
        self._release_textures()

    def close(self) -> None:
        self._release_textures()
        for entry in self._indices.values():
            entry["vao"].release()
            entry["ibo"].release()
        for entry in self._bufs.values():
            entry["vbo"].release()
        self._bufs = {}
        self._indices = {}
        for fbo in {id(f): f for f in (self._fbo, self._resolve, self._ss_fbo) if f is not None}.values():
            _release_framebuffer(fbo)
        self._fbo = self._resolve = self._ss_fbo = None
        self._ss_size = (0, 0)
        self._fbo_size = None
        for prog in self._progs.values():
            prog.release()
        self._progs = {}
        self.ctx = None  # the context itself is shared and kept (see _CONTEXTS)

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass

    # -- drawing -------------------------------------------------------------------------------
    def _vertex_buffer(self, key: Tuple[str, str], vbytes: int) -> Dict[str, Any]:
        """The vertex buffer of layer ``key``, grown to hold ``vbytes``."""
        entry = self._bufs.get(key)
        if entry is not None and entry["vbo"].size >= vbytes:
            return entry
        if entry is not None:
            entry["vbo"].release()
        entry = {"vbo": self.ctx.buffer(reserve=max(int(vbytes * 1.25), 64), dynamic=True)}
        self._bufs[key] = entry
        return entry

    def _index_buffer(self, key: Tuple[str, str, str], vbo, ibytes: int, fmt: str, attrs: Tuple[str, ...]) -> Dict[str, Any]:
        """The index buffer and vertex array of layer ``key[0]``, drawn by program ``key[1]``,
        in pass ``key[2]``: each pass has its own, so writing one pass's indices never waits for
        the other pass's draw (issued earlier in the same frame, still reading its own)."""
        entry = self._indices.get(key)
        if entry is not None and entry["vbo"] is vbo and entry["ibo"].size >= ibytes:
            return entry
        if entry is not None:
            entry["vao"].release()
            if entry["ibo"].size < ibytes:
                entry["ibo"].release()
                entry = None
        ibo = entry["ibo"] if entry is not None else self.ctx.buffer(reserve=max(int(ibytes * 1.25), 64), dynamic=True)
        vao = self.ctx.vertex_array(self._progs[key[1]], [(vbo, fmt, *attrs)], index_buffer=ibo, index_element_size=4)
        entry = {"vbo": vbo, "ibo": ibo, "vao": vao, "faces": None, "count": 0}
        self._indices[key] = entry
        return entry

    def _draw_layer(self, layer: Layer, zmap: Tuple[float, float], frame: Frame,
                    far: Optional[str] = None) -> None:
        """Upload (when changed) and draw ``layer``. ``far``: ``"write"`` draws it at the far
        plane writing depth (an underlay), ``"behind"`` just behind that, where nothing drew
        (the background); None: as the layer says."""
        n = len(layer.xy)
        if n == 0 or len(layer.faces) == 0:
            return
        key = (layer.name, layer.kind)
        program = _program(layer)
        lit = program == "lit"
        fmt, attrs = _VERTEX_FORMATS[program]
        # a layer drawn again in the frame's other pass (with a subset of its faces) keeps the
        # vertices the first pass uploaded: same attribute arrays and depth mapping
        arrays = (layer.xy, layer.depth, layer.normal, layer.color, layer.uv, layer.ratio)
        vertices = self._bufs.get(key)
        same_vertices = (vertices is not None and vertices.get("zmap") == zmap and vertices.get("far") == far
                         and all(a is b for a, b in zip(vertices.get("arrays", ()), arrays)))
        if not same_vertices:
            # interleaved float32 rows (position, then normal + colour or uv + ratio), filled in
            # place: one array a layer instead of a concatenation of converted copies
            data = np.empty((n, 9 if lit else 6), dtype=np.float32)
            data[:, :2] = layer.xy
            if far is not None:
                data[:, 2] = _FAR_Z[far]
            elif layer.depth is not None and layer.depth_test:
                lo, scale = zmap
                data[:, 2] = 0.98 - 1.96 * (np.asarray(layer.depth) - lo) * scale
            else:
                data[:, 2] = 0.0
            if lit:
                data[:, 3:6] = layer.normal
                data[:, 6:9] = layer.color
            else:
                data[:, 3:5] = layer.uv
                data[:, 5] = layer.ratio if layer.ratio is not None else 1.0
            vertices = self._vertex_buffer(key, data.nbytes)
            vertices["vbo"].write(data)
            vertices["zmap"], vertices["arrays"], vertices["far"] = zmap, arrays, far  # held: ids stay unique
        faces = layer.faces
        entry = self._indices.get((layer.name, program, self._pass))
        if entry is None or entry["faces"] is not faces or entry["vbo"] is not vertices["vbo"]:
            tri = np.ascontiguousarray(faces, dtype=np.uint32)
            entry = self._index_buffer((layer.name, program, self._pass), vertices["vbo"], tri.nbytes, fmt, attrs)
            entry["ibo"].write(tri)
            entry["faces"], entry["count"] = faces, tri.size
        self._draw_uploaded(layer, entry, far, program)

    def _draw_uploaded(self, layer: Layer, entry: Dict[str, Any], far: Optional[str], kind: str) -> None:
        """Set the state and uniforms of ``layer`` and draw its uploaded buffers with program
        ``kind`` (:func:`_program`)."""
        import moderngl

        ctx = self.ctx
        vao = entry["vao"]
        if kind == "lit":
            self._uniform(kind, "specular", float(layer.specular))
        else:
            tex = self._textures.get(layer.texture)
            if tex is None:
                raise RuntimeError(f"layer {layer.name!r} uses unknown texture {layer.texture!r}")
            tex.use(location=0)
            self._uniform(kind, "tex", 0)
            if kind == "photo":
                tex2 = self._textures.get(layer.texture2) if layer.texture2 else None
                (tex2 or tex).use(location=1)
                self._uniform(kind, "tex2", 1)
                self._uniform(kind, "mix_tex2", float(layer.mix) if tex2 is not None else 0.0)
            self._uniform(kind, "viewport", (float(self._size[1]), float(self._size[0])))  # uv in output pixels
        self._uniform(kind, "region", self._region)
        self._uniform(kind, "alpha", float(layer.alpha))
        if far is not None or (layer.depth_test and layer.depth is not None):
            ctx.enable(moderngl.DEPTH_TEST)
        else:
            ctx.disable(moderngl.DEPTH_TEST)
        self._target.depth_mask = far == "write" or (far is None and layer.alpha >= 1.0 and layer.depth_test)
        # an underlay's triangles all lie at one depth: the later of two overlapping ones wins,
        # as without depth test
        ctx.depth_func = "<=" if far == "write" else "<"
        if layer.alpha < 1.0:
            ctx.enable(moderngl.BLEND)
            ctx.blend_func = moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA
        else:
            ctx.disable(moderngl.BLEND)
        if layer.cull_back:
            ctx.enable(moderngl.CULL_FACE)
        else:
            ctx.disable(moderngl.CULL_FACE)
        vao.render(moderngl.TRIANGLES, vertices=entry["count"])

    def _uniform(self, program: str, name: str, value: Any) -> None:
        """Set a uniform of ``program`` when its value changed (a write costs a Python round
        trip into moderngl for every layer of every frame)."""
        key = (program, name)
        if self._uniform_values.get(key) != value:
            self._progs[program][name].value = value
            self._uniform_values[key] = value

    def _draw_layers(self, frame: Frame, zmap: Tuple[float, float]) -> None:
        layers = frame.layers
        if not frame.background_texture:
            for layer in layers:
                self._draw_layer(layer, zmap, frame)
            return
        h, w = self._size
        quad = self._quads.get((h, w))
        if quad is None:  # one array per size: the pass that redraws it reuses its upload
            quad = self._quads[(h, w)] = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)
        bg_layer = Layer("background", "photo", quad, _QUAD_FACES, uv=quad,
                         texture=self._backdrop_texture(frame.background_texture), depth_test=False)
        # The background is painted just before the first layer that neither is a leading
        # opaque depth-less one (the photo look's skirt, which then writes the far depth) nor
        # writes depth itself, and only where those left the depth buffer clear: llvmpipe's
        # early depth test skips the pixels they cover (the skirt covers most of the box).
        # Everything after it paints over it as before.
        under = 0
        while under < len(layers) and not _writes_depth(layers[under]) and layers[under].alpha >= 1.0:
            under += 1
        at = under
        while at < len(layers) and _writes_depth(layers[at]):
            at += 1
        for i, layer in enumerate(layers):
            if i == at:
                self._draw_layer(bg_layer, zmap, frame, far="behind")
            self._draw_layer(layer, zmap, frame, far="write" if i < under else None)
        if at == len(layers):
            self._draw_layer(bg_layer, zmap, frame, far="behind")

    def _clear(self, fbo, frame: Frame) -> None:
        """Clear all of ``fbo``, not just the box drawn: llvmpipe clears a whole surface by
        marking its tiles, while a scissored clear is drawn as a quad (5 % of a clip's CPU)."""
        fbo.use()
        fbo.depth_mask = True
        bg = frame.background
        fbo.clear(float(bg[0]), float(bg[1]), float(bg[2]), 1.0, depth=1.0)

    def _submit(self, frame: Frame) -> Tuple[np.ndarray, Any, Any]:
        """Issue every pass of ``frame`` and flush: the rasteriser works on them while the
        caller builds the next frame; :meth:`_collect` reads them back."""
        ctx = self.ctx
        h, w = self._size
        ctx.depth_func = "<"
        # our NDC y flips pixel v: negative signed area in pixels = counter-clockwise in GL
        ctx.front_face = "cw" if frame.front_ccw_pixels else "ccw"
        zmap = _depth_map(frame)
        img = self._backdrop(frame)
        # only the pixels the layers can touch are drawn and read back (llvmpipe's cost is per
        # pixel): the rest of the frame is the background, which is known already
        box = _layers_box(frame, (h, w)) if img is not None else (0, 0, w, h)
        if img is None:
            img = np.empty((h, w, 3), dtype=np.uint8)
        # The frame's edge box (the lips over the dark mouth) is drawn again at
        # MOUTH_SUPERSAMPLE^2 samples a pixel and its edge pixels blended over the main pass;
        # with MSAA the main pass has its samples already.
        mouth = None
        if frame.edge_box is not None and box is not None and not (self.samples or 0) > 1:
            mouth = _intersect(tuple(int(v) for v in frame.edge_box), box)
        if mouth is not None:
            self._issue_box(self._supersample_fbo(mouth), None, frame, zmap, mouth, MOUTH_SUPERSAMPLE)
        if box is not None:
            self._issue_box(self._fbo, self._resolve, frame, zmap, box, 1)
        self._flush()
        return img, box, mouth

    def _collect(self, pending: Tuple[np.ndarray, Any, Any]) -> np.ndarray:
        img, box, mouth = pending
        if mouth is not None:
            # blended here, not at submit: llvmpipe stalls a draw that samples a texture
            # still being rasterised, and by now the supersampled pass is done
            self._draw_edges(mouth, box)
        if box is not None:
            x0, y0, x1, y1 = box
            img[y0:y1, x0:x1] = self._read_box(self._resolve, box)
        return img

    def _draw(self, frame: Frame) -> np.ndarray:
        return self._collect(self._submit(frame))

    def _backdrop(self, frame: Frame) -> Optional[np.ndarray]:
        """``(H, W, 3)`` uint8 of what the frame shows where no layer is: the clear colour or
        the background texture (when it has the frame's size, so a texel is a pixel); None
        when neither applies and the whole frame has to be drawn."""
        h, w = self._size
        if frame.background_texture:
            tex = self._arrays.get(frame.background_texture)
            if tex is None or tex.shape != (h, w, 3):
                return None
            return tex.copy()
        bg = tuple(np.round(np.clip(np.asarray(frame.background, dtype=np.float64), 0.0, 1.0) * 255.0).astype(np.uint8))
        key = (bg, h, w)
        if self._plain_key != key:  # filling from a broadcast is ~20x slower than a copy
            self._plain = np.empty((h, w, 3), dtype=np.uint8)
            self._plain[:] = bg
            self._plain_key = key
        return self._plain.copy()

    def _issue_box(self, fbo, resolve, frame: Frame, zmap: Tuple[float, float], box: Tuple[int, int, int, int],
                   k: int) -> None:
        """Draw the pixel box ``(x0, y0, x1, y1)`` of ``frame`` at ``k`` x ``k`` samples a pixel
        into the lower-left corner of ``fbo`` (then resolved into ``resolve``, when another)."""
        import moderngl

        ctx = self.ctx
        self._pass = "main" if k == 1 else f"x{k}"
        self._aim(fbo, box, k)
        self._clear(fbo, frame)
        self._draw_layers(frame if k == 1 else _layers_over(frame, box), zmap)
        ctx.disable(moderngl.BLEND)
        if resolve is not None and resolve is not fbo:
            ctx.copy_framebuffer(resolve, fbo)

    def _aim(self, fbo, box: Tuple[int, int, int, int], k: int) -> Tuple[int, int, int, int]:
        """Make ``fbo`` the target of the draws that follow, with the pixel box ``(x0, y0, x1,
        y1)`` at ``k`` x ``k`` samples a pixel in its lower-left corner; returns that viewport."""
        x0, y0, x1, y1 = box
        view = (0, 0, (x1 - x0) * k, (y1 - y0) * k)
        self._target = fbo
        fbo.use()
        fbo.viewport = view
        self.ctx.viewport = view
        self._region = (float(x0), float(y0), float(x1 - x0), float(y1 - y0))
        return view

    def _draw_edges(self, box: Tuple[int, int, int, int], into: Tuple[int, int, int, int]) -> None:
        """Blend the edge pixels of the pixel box ``box``, drawn supersampled into the
        supersample framebuffer, over the main framebuffer, which holds the box ``into``."""
        import moderngl

        ctx = self.ctx
        self._aim(self._fbo, into, 1)
        x0, y0, x1, y1 = box
        quad = np.array([[x0, y0, 0], [x1, y0, 0], [x1, y1, 0], [x0, y1, 0]], dtype=np.float32)
        entry = self._indices.get(("edges", "edges", "main"))
        if entry is None:
            vbo = self.ctx.buffer(reserve=quad.nbytes, dynamic=True)
            self._bufs[("edges", "edges")] = {"vbo": vbo}
            entry = self._index_buffer(("edges", "edges", "main"), vbo, _QUAD_FACES.nbytes, "3f", ("in_pos",))
            entry["ibo"].write(_QUAD_FACES)
            entry["count"] = _QUAD_FACES.size
        entry["vbo"].write(quad)
        self._ss_fbo.color_attachments[0].use(location=0)
        self._uniform("edges", "samples", 0)
        self._uniform("edges", "region", self._region)
        self._uniform("edges", "box", (float(x0), float(y0), float(y1 - y0)))
        ctx.disable(moderngl.DEPTH_TEST | moderngl.CULL_FACE)
        self._target.depth_mask = False
        ctx.enable(moderngl.BLEND)
        ctx.blend_func = moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA
        entry["vao"].render(moderngl.TRIANGLES, vertices=entry["count"])
        ctx.disable(moderngl.BLEND)

    def _read_box(self, fbo, box: Tuple[int, int, int, int]) -> np.ndarray:
        """``(y1-y0, x1-x0, 3)`` uint8, top row first, of a box :meth:`_issue_box` drew into
        ``fbo`` (a view of a buffer the next read reuses)."""
        x0, y0, x1, y1 = box
        bw, bh = x1 - x0, y1 - y0
        if len(self._readbuf) < bw * bh * 3:
            self._readbuf = bytearray(bw * bh * 3)
        fbo.read_into(self._readbuf, viewport=(0, 0, bw, bh), components=3, alignment=1)
        return np.frombuffer(self._readbuf, dtype=np.uint8, count=bw * bh * 3).reshape(bh, bw, 3)[::-1]

    def _supersample_fbo(self, box: Tuple[int, int, int, int]):
        """The framebuffer of the supersampled mouth pass, grown to hold ``box``."""
        ctx = self.ctx
        k = MOUTH_SUPERSAMPLE
        x0, y0, x1, y1 = box
        bw, bh = (x1 - x0) * k, (y1 - y0) * k
        if self._ss_fbo is None or self._ss_size[0] < bw or self._ss_size[1] < bh:
            if self._ss_fbo is not None:
                _release_framebuffer(self._ss_fbo)
            sw = max(bw, self._ss_size[0], 64)
            sh = max(bh, self._ss_size[1], 64)
            sw, sh = -(-sw // 64) * 64, -(-sh // 64) * 64
            samples = ctx.texture((sw, sh), 4)  # sampled by the edge pass (texelFetch)
            self._ss_fbo = ctx.framebuffer(color_attachments=[samples],
                                           depth_attachment=ctx.depth_renderbuffer((sw, sh)))
            self._ss_size = (sw, sh)
        return self._ss_fbo


_QUAD_FACES = np.array([[0, 1, 2], [0, 2, 3]], dtype=np.uint32)


def _release_framebuffer(fbo) -> None:
    """Release ``fbo`` and its attachments (releasing a framebuffer keeps them)."""
    for obj in (*fbo.color_attachments, fbo.depth_attachment, fbo):
        if obj is not None:
            try:
                obj.release()
            except Exception:  # pragma: no cover - already released with the context
                pass


def _intersect(a: Tuple[int, int, int, int], b: Tuple[int, int, int, int]) -> Optional[Tuple[int, int, int, int]]:
    """The pixel box where boxes ``a`` and ``b`` ``(x0, y0, x1, y1)`` overlap; None if nowhere."""
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _layers_over(frame: Frame, box: Tuple[int, int, int, int]) -> Frame:
    """``frame`` with only the triangles whose pixel bounds meet ``box (x0, y0, x1, y1)``
    (layers left without any are dropped): the others cannot change a pixel there, and
    llvmpipe pays per triangle."""
    x0, y0, x1, y1 = box
    layers = [layer for layer in frame.layers if len(layer.xy) and len(layer.faces)]
    if not layers:
        return dataclasses.replace(frame, layers=[])
    # a triangle's bounds miss the box iff all three corners lie beyond one of its sides:
    # per-vertex outcodes (Cohen-Sutherland), for every layer's vertices at once, AND-ed per face
    xy = np.concatenate([layer.xy for layer in layers])
    x, y = xy[:, 0], xy[:, 1]
    code = ((x < x0).view(np.uint8) | ((x > x1).view(np.uint8) << 1) | ((y < y0).view(np.uint8) << 2)
            | ((y > y1).view(np.uint8) << 3))
    start, keep = 0, []
    for layer in layers:
        faces = np.asarray(layer.faces)
        corners = code[start:start + len(layer.xy)][faces]
        start += len(layer.xy)
        meets = (corners[:, 0] & corners[:, 1] & corners[:, 2]) == 0
        if meets.all():
            keep.append(layer)
        elif meets.any():
            keep.append(dataclasses.replace(layer, faces=faces[meets]))
    return dataclasses.replace(frame, layers=keep)


#: vertex formats of the programs (one vertex buffer layout per kind: "plain" skips the ratio)
_VERTEX_FORMATS = {
    "lit": ("3f 3f 3f", ("in_pos", "in_normal", "in_color")),
    "photo": ("3f 2f 1f", ("in_pos", "in_uv", "in_ratio")),
    "plain": ("3f 2f 4x", ("in_pos", "in_uv")),
}


def _program(layer: Layer) -> str:
    """The program that draws ``layer``: ``"lit"``, or for a photo layer ``"plain"`` when
    it has no shading ratio and mixes in no second texture (:data:`PHOTO_PLAIN_FS`: the same
    colour, less work a fragment), else ``"photo"``."""
    if layer.kind == "lit":
        return "lit"
    return "plain" if layer.ratio is None and not (layer.texture2 and layer.mix > 0) else "photo"


#: clip-space z of the far placements of :meth:`GLRenderer._draw_layer`: beyond every
#: depth-tested layer (at most 0.98), the background behind the underlay
_FAR_Z = {"write": 0.99, "behind": 0.995}


def _writes_depth(layer: Layer) -> bool:
    """Whether ``layer`` is drawn opaque with depth test and writes (see ``_draw_uploaded``)."""
    return layer.depth_test and layer.depth is not None and layer.alpha >= 1.0


def _depth_map(frame: Frame) -> Tuple[float, float]:
    """``(lo, 1 / (hi - lo))`` over the depth-tested layers' depths: maps them into the depth
    buffer's range, the same for every pass of a frame."""
    depths = [np.asarray(l.depth) for l in frame.layers if l.depth is not None and l.depth_test and len(l.depth)]
    if not depths:
        return 0.0, 1.0
    lo = min(float(d.min()) for d in depths)
    hi = max(float(d.max()) for d in depths)
    return lo, 1.0 / max(hi - lo, 1e-12)


def _layers_box(frame: Frame, size: Tuple[int, int]) -> Optional[Tuple[int, int, int, int]]:
    """Pixel box ``(x0, y0, x1, y1)`` that holds every layer's triangles (2 px margin), clipped
    to the frame; None when no layer has any."""
    points, seen = [], set()
    for layer in frame.layers:
        xy = np.asarray(layer.xy)
        if not len(xy) or not len(layer.faces):
            continue
        view = (xy.__array_interface__["data"][0], xy.shape, xy.strides)
        if view not in seen:  # the shaded look's painted parts share the skin's positions
            seen.add(view)
            points.append(xy)
    return points_box(np.concatenate(points), size, margin=2) if points else None
