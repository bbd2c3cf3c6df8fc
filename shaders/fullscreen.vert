// Full-screen triangle from gl_VertexID (no vertex buffers): the image views draw one triangle that
// covers their offscreen target and do all the work per fragment.
#version 330 core
void main() {
  vec2 p = vec2(float((gl_VertexID << 1) & 2), float(gl_VertexID & 2));
  gl_Position = vec4(p * 2.0 - 1.0, 0.0, 1.0);
}
