"""OpenGL backend: moderngl on a headless EGL context.

On a CPU-only Linux machine this runs on Mesa's llvmpipe (Debian packages ``libegl1 libgl1
libgl1-mesa-dri``); on a machine with an NVIDIA driver the same code runs on the GPU's EGL.
One context, two shader programs, one (multisampled) framebuffer and a few dynamic vertex
buffers are created once and reused for every frame; only the vertex data changes.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional, Tuple

import numpy as np

from ..errors import RendererUnavailableError
from .base import AMBIENT, HEADLIGHT, KEY, KEY_DIR, SHININESS, SPECULAR, Frame, Layer, Renderer

__all__ = ["GLRenderer", "INSTALL_HINT"]

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "the 'gl' renderer needs an EGL/OpenGL library: on Debian/Ubuntu run "
    "`apt-get install libegl1 libgl1 libgl1-mesa-dri` (Mesa's llvmpipe renders on the CPU; "
    "an NVIDIA driver provides its own EGL); or install PyTorch3D and use renderer='pytorch3d'"
)

_SHADE = f"""
const float AMBIENT = {AMBIENT:.8f};
const float HEADLIGHT = {HEADLIGHT:.8f};
const float KEY = {KEY:.8f};
const vec3 KEY_DIR = vec3({KEY_DIR[0]:.8f}, {KEY_DIR[1]:.8f}, {KEY_DIR[2]:.8f});
vec3 towards_viewer(vec3 n) {{
    float l = length(n);
    n = l > 1e-20 ? n / l : vec3(0.0, 0.0, 1.0);
    return n.z < 0.0 ? -n : n;
}}
float shade(vec3 n) {{
    return AMBIENT + HEADLIGHT * max(n.z, 0.0) + KEY * max(dot(n, KEY_DIR), 0.0);
}}
"""

_VS_HEAD = """
#version 330
uniform vec2 viewport;
in vec3 in_pos;
vec4 to_clip(vec3 p) {
    return vec4(p.x / viewport.x * 2.0 - 1.0, 1.0 - p.y / viewport.y * 2.0, p.z, 1.0);
}
"""

_LIT_VS = _VS_HEAD + """
in vec3 in_normal;
in vec3 in_color;
out vec3 v_normal;
out vec3 v_color;
void main() {
    gl_Position = to_clip(in_pos);
    v_normal = in_normal;
    v_color = in_color;
}
"""

_LIT_FS = "#version 330\n" + _SHADE + f"""
uniform float specular;
uniform float alpha;
in vec3 v_normal;
in vec3 v_color;
out vec4 f_color;
const vec3 HALF_KEY = normalize(KEY_DIR + vec3(0.0, 0.0, 1.0));
void main() {{
    vec3 n = towards_viewer(v_normal);
    float s = specular * {SPECULAR:.6f} * (pow(max(n.z, 0.0), {SHININESS:.3f}) + 0.6 * pow(max(dot(n, HALF_KEY), 0.0), {SHININESS:.3f}));
    f_color = vec4(clamp(v_color * shade(n) + vec3(s), 0.0, 1.0), alpha);
}}
"""

_PHOTO_VS = _VS_HEAD + """
in vec2 in_uv;
in float in_ratio;
out vec2 v_uv;
out float v_ratio;
void main() {
    gl_Position = to_clip(in_pos);
    v_uv = in_uv / viewport;
    v_ratio = in_ratio;
}
"""

_PHOTO_FS = """#version 330
uniform sampler2D tex;
uniform sampler2D tex2;
uniform float mix_tex2;
uniform float alpha;
in vec2 v_uv;
in float v_ratio;
out vec4 f_color;
void main() {
    vec3 c = texture(tex, v_uv).rgb;
    if (mix_tex2 > 0.0) c = mix(c, texture(tex2, v_uv).rgb, mix_tex2);
    float r = v_ratio;
    if (r != 1.0) c = r < 1.0 ? c * r : c + vec3((r - 1.0) * dot(c, vec3(0.299, 0.587, 0.114)));
    f_color = vec4(clamp(c, 0.0, 1.0), alpha);
}
"""


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
        self._bufs: Dict[Tuple[str, str], Dict[str, Any]] = {}
        self._textures: Dict[str, Any] = {}
        self._gl_renderer = ""

    # -- context ---------------------------------------------------------------------------------
    def _context(self):
        if self.ctx is not None:
            return self.ctx
        try:
            import moderngl
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
        self._progs["lit"] = ctx.program(vertex_shader=_LIT_VS, fragment_shader=_LIT_FS)
        self._progs["photo"] = ctx.program(vertex_shader=_PHOTO_VS, fragment_shader=_PHOTO_FS)
        return ctx

    @property
    def device_info(self) -> str:
        return f"gl: {self._gl_renderer}" if self._gl_renderer else "gl (not started)"

    def _framebuffer(self, size: Tuple[int, int]):
        ctx = self.ctx
        if self._fbo_size == size:
            return
        for obj in (self._fbo, self._resolve):
            if obj is not None:
                obj.release()
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
        import moderngl

        ctx = self._context()
        self._framebuffer(tuple(size))
        self._release_textures()
        for name, img in textures.items():
            h, w = img.shape[:2]
            tex = ctx.texture((w, h), 3, np.ascontiguousarray(img, dtype=np.uint8).tobytes(), alignment=1)
            tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
            tex.repeat_x = False
            tex.repeat_y = False
            self._textures[name] = tex
        self._size = tuple(size)

    def _release_textures(self) -> None:
        for tex in self._textures.values():
            tex.release()
        self._textures = {}

    def _end(self) -> None:
        self._release_textures()

    def close(self) -> None:
        self._release_textures()
        for entry in self._bufs.values():
            for key in ("vao", "vbo", "ibo"):
                if entry.get(key) is not None:
                    entry[key].release()
        self._bufs = {}
        for obj in (self._fbo, self._resolve):
            if obj is not None:
                try:
                    obj.release()
                except Exception:
                    pass
        self._fbo = self._resolve = None
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
    def _upload(self, key: Tuple[str, str], data: np.ndarray, faces: np.ndarray, fmt: str, attrs: Tuple[str, ...]):
        ctx = self.ctx
        entry = self._bufs.get(key)
        vbytes = data.nbytes
        ibytes = faces.nbytes
        rebuild = entry is None or entry["vbo"].size < vbytes or entry["ibo"].size < ibytes
        if rebuild:
            if entry is not None:
                for k in ("vao", "vbo", "ibo"):
                    entry[k].release()
            vbo = ctx.buffer(reserve=max(int(vbytes * 1.25), 64), dynamic=True)
            ibo = ctx.buffer(reserve=max(int(ibytes * 1.25), 64), dynamic=True)
            prog = self._progs[key[1]]
            vao = ctx.vertex_array(prog, [(vbo, fmt, *attrs)], index_buffer=ibo, index_element_size=4)
            entry = {"vbo": vbo, "ibo": ibo, "vao": vao}
            self._bufs[key] = entry
        entry["vbo"].write(data)
        entry["ibo"].write(faces)
        return entry["vao"]

    def _draw_layer(self, layer: Layer, zmap: Tuple[float, float], frame: Frame) -> None:
        import moderngl

        ctx = self.ctx
        n = len(layer.xy)
        if n == 0 or len(layer.faces) == 0:
            return
        pos = np.empty((n, 3), dtype=np.float32)
        pos[:, :2] = layer.xy
        if layer.depth is not None and layer.depth_test:
            lo, scale = zmap
            pos[:, 2] = 0.98 - 1.96 * (np.asarray(layer.depth) - lo) * scale
        else:
            pos[:, 2] = 0.0
        faces = np.ascontiguousarray(layer.faces, dtype=np.uint32)
        if layer.kind == "lit":
            data = np.concatenate([pos, np.asarray(layer.normal, np.float32), np.asarray(layer.color, np.float32)], axis=1)
            vao = self._upload((layer.name, "lit"), np.ascontiguousarray(data, np.float32), faces, "3f 3f 3f",
                               ("in_pos", "in_normal", "in_color"))
            prog = self._progs["lit"]
            prog["specular"].value = float(layer.specular)
        else:
            ratio = layer.ratio if layer.ratio is not None else np.ones(n)
            data = np.concatenate([pos, np.asarray(layer.uv, np.float32), np.asarray(ratio, np.float32)[:, None]], axis=1)
            vao = self._upload((layer.name, "photo"), np.ascontiguousarray(data, np.float32), faces, "3f 2f 1f",
                               ("in_pos", "in_uv", "in_ratio"))
            prog = self._progs["photo"]
            tex = self._textures.get(layer.texture)
            if tex is None:
                raise RuntimeError(f"layer {layer.name!r} uses unknown texture {layer.texture!r}")
            tex.use(location=0)
            prog["tex"].value = 0
            tex2 = self._textures.get(layer.texture2) if layer.texture2 else None
            mix = float(layer.mix) if tex2 is not None else 0.0
            (tex2 or tex).use(location=1)
            prog["tex2"].value = 1
            prog["mix_tex2"].value = mix
        prog["viewport"].value = (float(self._size[1]), float(self._size[0]))
        if "alpha" in prog:
            prog["alpha"].value = float(layer.alpha)
        if layer.depth_test and layer.depth is not None:
            ctx.enable(moderngl.DEPTH_TEST)
        else:
            ctx.disable(moderngl.DEPTH_TEST)
        self._fbo.depth_mask = layer.alpha >= 1.0 and layer.depth_test
        if layer.alpha < 1.0:
            ctx.enable(moderngl.BLEND)
            ctx.blend_func = moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA
        else:
            ctx.disable(moderngl.BLEND)
        if layer.cull_back:
            ctx.enable(moderngl.CULL_FACE)
        else:
            ctx.disable(moderngl.CULL_FACE)
        vao.render(moderngl.TRIANGLES, vertices=faces.size)

    def _draw(self, frame: Frame) -> np.ndarray:
        import moderngl

        ctx = self.ctx
        h, w = self._size
        self._fbo.use()
        self._fbo.depth_mask = True
        bg = frame.background
        self._fbo.clear(float(bg[0]), float(bg[1]), float(bg[2]), 1.0, depth=1.0)
        ctx.depth_func = "<"
        # our NDC y flips pixel v: negative signed area in pixels = counter-clockwise in GL
        ctx.front_face = "cw" if frame.front_ccw_pixels else "ccw"
        depths = [np.asarray(l.depth) for l in frame.layers if l.depth is not None and l.depth_test and len(l.depth)]
        if depths:
            lo = min(float(d.min()) for d in depths)
            hi = max(float(d.max()) for d in depths)
            zmap = (lo, 1.0 / max(hi - lo, 1e-12))
        else:
            zmap = (0.0, 1.0)
        if frame.background_texture:
            quad = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)
            bg_layer = Layer("background", "photo", quad, np.array([[0, 1, 2], [0, 2, 3]]), uv=quad,
                             texture=frame.background_texture, depth_test=False)
            self._draw_layer(bg_layer, zmap, frame)
        for layer in frame.layers:
            self._draw_layer(layer, zmap, frame)
        ctx.disable(moderngl.BLEND)
        if self._resolve is not self._fbo:
            ctx.copy_framebuffer(self._resolve, self._fbo)
        self._resolve.read_into(self._readbuf, components=3, alignment=1)
        img = np.frombuffer(self._readbuf, dtype=np.uint8).reshape(h, w, 3)
        return np.ascontiguousarray(img[::-1])
