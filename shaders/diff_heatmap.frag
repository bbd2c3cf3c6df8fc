// Difference view: heat map of |A − B| between two images of the same size (dense and BLR generations
// of one seed and class). Per pixel d = mean over RGB of |a − b| (0..1), shown as min(d · gain, 1)
// through an inferno-like colour ramp (black → purple → orange → pale yellow), so small differences stay
// visible at a high gain and the ramp stays readable in greyscale print. Same zoom/pan mapping as
// image_view.frag; always nearest sampling, so every heat pixel is exactly one image pixel.
#version 330 core
uniform sampler2D u_a;
uniform sampler2D u_b;
uniform vec2 u_view;
uniform vec2 u_image_size;
uniform vec2 u_pan;
uniform float u_scale;
uniform float u_gain;
uniform vec3 u_background;
out vec4 frag;

// Inferno-like ramp: linear interpolation between five colours sampled from matplotlib's inferno map
// at t = 0, 0.25, 0.5, 0.75, 1 (perceptually ordered, dark for "no difference").
vec3 ramp(float t) {
  const vec3 k0 = vec3(0.001, 0.000, 0.014);
  const vec3 k1 = vec3(0.341, 0.062, 0.429);
  const vec3 k2 = vec3(0.735, 0.216, 0.330);
  const vec3 k3 = vec3(0.976, 0.557, 0.035);
  const vec3 k4 = vec3(0.988, 1.000, 0.643);
  float x = clamp(t, 0.0, 1.0) * 4.0;
  if (x < 1.0) return mix(k0, k1, x);
  if (x < 2.0) return mix(k1, k2, x - 1.0);
  if (x < 3.0) return mix(k2, k3, x - 2.0);
  return mix(k3, k4, x - 3.0);
}

void main() {
  vec2 p = vec2(gl_FragCoord.x, u_view.y - gl_FragCoord.y);
  vec2 q = (p - 0.5 * u_view - u_pan) / u_scale + 0.5 * u_image_size;
  if (q.x < 0.0 || q.y < 0.0 || q.x >= u_image_size.x || q.y >= u_image_size.y) {
    vec2 cell = floor(p / 12.0);
    float checker = mod(cell.x + cell.y, 2.0);
    frag = vec4(u_background * (0.9 + 0.1 * checker), 1.0);
    return;
  }
  ivec2 texel = ivec2(floor(q));
  vec3 a = texelFetch(u_a, texel, 0).rgb;
  vec3 b = texelFetch(u_b, texel, 0).rgb;
  vec3 d3 = abs(a - b);
  float d = (d3.r + d3.g + d3.b) / 3.0;
  frag = vec4(ramp(d * u_gain), 1.0);
}
