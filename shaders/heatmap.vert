#version 330 core
// One quad over the visible part of the matrix, made from gl_VertexID (no vertex buffer):
// vertices 0..3 are the corners (0,0) (1,0) (0,1) (1,1) of a triangle strip.
// Zoom and pan only change these two uniforms; the matrix texture is never re-uploaded for them.

uniform vec4 u_quad;   // x0, y0, x1, y1: top-left and bottom-right corners in NDC
uniform vec4 u_cells;  // c0, r0, c1, r1: the same corners in matrix coordinates (col, row), in cells

out vec2 v_cell;       // (col, row), continuous; cell (c, r) covers [c, c+1) x [r, r+1)

void main() {
  vec2 corner = vec2(float(gl_VertexID & 1), float(gl_VertexID >> 1));
  gl_Position = vec4(mix(u_quad.xy, u_quad.zw, corner), 0.0, 1.0);
  v_cell = mix(u_cells.xy, u_cells.zw, corner);
}
