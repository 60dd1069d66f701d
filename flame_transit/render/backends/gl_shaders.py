"""GLSL of the GL backend (:mod:`.gl`): the lit and photo programs, whose constants come from
:mod:`..lights` (the same light model every backend uses), the plain photo program for layers
that need neither relighting nor a second texture, and the mouth's edge pass.

Vertex positions arrive in output pixels with depth in ``[-1, 1]``; ``region`` is the pixel
rectangle ``(x0, y0, w, h)`` being drawn (the frame's layers box, or the supersampled mouth box).
"""

from __future__ import annotations

from ..lights import AMBIENT, HALF_KEY, HEADLIGHT, KEY, KEY_DIR, LUMA, SHININESS, SPECULAR

__all__ = ["EDGE_FS", "EDGE_RAMP", "EDGE_SPREAD", "EDGE_VS", "LIT_FS", "LIT_VS", "MOUTH_SUPERSAMPLE", "PHOTO_FS",
           "PHOTO_PLAIN_FS", "PHOTO_VS"]

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
uniform vec4 region;  // drawn pixel rectangle (x0, y0, w, h): the frame, or a supersampled part
in vec3 in_pos;
vec4 to_clip(vec3 p) {
    return vec4((p.x - region.x) / region.z * 2.0 - 1.0, 1.0 - (p.y - region.y) / region.w * 2.0, p.z, 1.0);
}
"""

LIT_VS = _VS_HEAD + """
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

def _shine_glsl(exponent: float) -> str:
    """GLSL ``float shine(float x)``: ``x ** exponent``, by repeated squaring when the exponent
    is a small whole number (llvmpipe evaluates ``pow`` as exp2(log2) per fragment)."""
    k = int(round(exponent))
    if abs(exponent - k) > 1e-9 or not 1 <= k <= 64:
        return f"float shine(float x) {{ return pow(x, {exponent:.6f}); }}\n"
    body, power = ["float r = 1.0;", "float p = x;"], k
    while power:
        if power & 1:
            body.append("r *= p;")
        power >>= 1
        if power:
            body.append("p *= p;")
    return "float shine(float x) { " + " ".join(body) + " return r; }\n"


LIT_FS = "#version 330\n" + _SHADE + _shine_glsl(SHININESS) + f"""
uniform float specular;
uniform float alpha;
in vec3 v_normal;
in vec3 v_color;
out vec4 f_color;
const vec3 HALF_KEY = vec3({HALF_KEY[0]:.8f}, {HALF_KEY[1]:.8f}, {HALF_KEY[2]:.8f});
void main() {{
    vec3 n = towards_viewer(v_normal);
    float s = specular == 0.0 ? 0.0 : specular * {SPECULAR:.6f} * (shine(max(n.z, 0.0)) + 0.6 * shine(max(dot(n, HALF_KEY), 0.0)));
    f_color = vec4(clamp(v_color * shade(n) + vec3(s), 0.0, 1.0), alpha);
}}
"""

PHOTO_VS = _VS_HEAD + """
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

PHOTO_FS = f"""#version 330
uniform sampler2D tex;
uniform sampler2D tex2;
uniform float mix_tex2;
uniform float alpha;
in vec2 v_uv;
in float v_ratio;
out vec4 f_color;
void main() {{
    vec3 c = texture(tex, v_uv).rgb;
    if (mix_tex2 > 0.0) c = mix(c, texture(tex2, v_uv).rgb, mix_tex2);
    float r = v_ratio;
    if (r != 1.0) c = r < 1.0 ? c * r : c + vec3((r - 1.0) * dot(c, vec3({LUMA[0]:.6f}, {LUMA[1]:.6f}, {LUMA[2]:.6f})));
    f_color = vec4(clamp(c, 0.0, 1.0), alpha);
}}
"""

#: :data:`PHOTO_FS` for a layer without a shading ratio or a second texture (the photo look's
#: skirt and background, the eyes, the photo's own mouth): the same colour, without the
#: relighting and mixing that llvmpipe pays per fragment even where they change nothing (a
#: tenth of a photo-look clip's rasteriser time)
PHOTO_PLAIN_FS = """#version 330
uniform sampler2D tex;
uniform float alpha;
in vec2 v_uv;
out vec4 f_color;
void main() {
    f_color = vec4(clamp(texture(tex, v_uv).rgb, 0.0, 1.0), alpha);
}
"""

#: supersampling factor (per axis) of the pixels around the mouth hole (2: 4 samples a pixel;
#: 4 looked no better at 512 px and cost 3x more)
MOUTH_SUPERSAMPLE = 2
#: a pixel of the mouth box whose subsamples differ by more than this (0..255, largest channel)
#: lies on an edge and takes their average; fully at EDGE_SPREAD + EDGE_RAMP
EDGE_SPREAD = 24.0
EDGE_RAMP = 40.0

EDGE_VS = _VS_HEAD + """
void main() {
    gl_Position = to_clip(in_pos);
}
"""

EDGE_FS = f"""#version 330
uniform sampler2D samples;  // the mouth box drawn at K x K samples a pixel, bottom row first
uniform vec4 region;        // the pixel rectangle (x0, y0, w, h) of the pass drawn into
uniform vec3 box;           // the mouth box's left, top and height in pixels
out vec4 f_color;
const int K = {MOUTH_SUPERSAMPLE};
void main() {{
    ivec2 px = ivec2(int(region.x) + int(gl_FragCoord.x), int(region.y + region.w) - 1 - int(gl_FragCoord.y));
    ivec2 base = ivec2(K * (px.x - int(box.x)), K * (int(box.z) - 1 - (px.y - int(box.y))));
    vec3 lo = vec3(255.0), hi = vec3(0.0), sum = vec3(0.0);
    for (int i = 0; i < K; i++) {{
        for (int j = 0; j < K; j++) {{
            vec3 c = round(texelFetch(samples, base + ivec2(j, i), 0).rgb * 255.0);
            lo = min(lo, c);
            hi = max(hi, c);
            sum += c;
        }}
    }}
    vec3 spread = hi - lo;
    float edge = max(spread.r, max(spread.g, spread.b));
    if (edge <= {EDGE_SPREAD:.1f}) discard;
    // blended over the single-sample pixel: c + a * (average - c)
    f_color = vec4(sum / float(K * K * 255), clamp((edge - {EDGE_SPREAD:.1f}) / {EDGE_RAMP:.1f}, 0.0, 1.0));
}}
"""
