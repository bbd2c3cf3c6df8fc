// Image view: shows u_image at zoom u_scale (screen pixels per image pixel) panned by u_pan, with
// nearest (texelFetch: exact pixels, for judging small images) or bilinear filtering. Outside the image
// a dim checkerboard marks the empty area. Coordinates: p is the fragment in top-down view pixels; the
// image centre sits at the view centre plus the pan.
#version 330 core
uniform sampler2D u_image;
uniform vec2 u_view;        // view size in pixels
uniform vec2 u_image_size;  // image size in pixels
uniform vec2 u_pan;         // offset of the image centre from the view centre, in view pixels
uniform float u_scale;      // view pixels per image pixel
uniform int u_nearest;      // 1: nearest, 0: bilinear
uniform vec3 u_background;
out vec4 frag;

void main() {
  vec2 p = vec2(gl_FragCoord.x, u_view.y - gl_FragCoord.y);
  vec2 q = (p - 0.5 * u_view - u_pan) / u_scale + 0.5 * u_image_size;  // image pixel coordinates
  if (q.x < 0.0 || q.y < 0.0 || q.x >= u_image_size.x || q.y >= u_image_size.y) {
    vec2 cell = floor(p / 12.0);
    float checker = mod(cell.x + cell.y, 2.0);
    frag = vec4(u_background * (0.9 + 0.1 * checker), 1.0);
    return;
  }
  vec4 c;
  if (u_nearest == 1) {
    c = texelFetch(u_image, ivec2(floor(q)), 0);
  } else {
    c = texture(u_image, q / u_image_size);
  }
  frag = vec4(c.rgb, 1.0);
}
