#version 330 core
// Colours one fragment of the heatmap: fetch the cell's value (R32F, no filtering), normalise it
// by the colour scale [u_vmin, u_vmax] and look it up in the 256-entry colormap. The index rule
// matches Colormap::color() on the CPU (floor(t * 256), clamped; NaN is mid grey; an empty
// scale maps to the middle), so the screen and the exported figures agree texel for texel.

uniform sampler2D u_matrix;    // cols x rows, one float per texel
uniform sampler2D u_colormap;  // 256 x 1, RGBA8
uniform float u_vmin;
uniform float u_vmax;

in vec2 v_cell;
out vec4 frag_colour;

void main() {
  ivec2 size = textureSize(u_matrix, 0);
  ivec2 cell = clamp(ivec2(floor(v_cell)), ivec2(0), size - 1);
  float value = texelFetch(u_matrix, cell, 0).r;
  if (isnan(value)) {
    frag_colour = vec4(vec3(128.0 / 255.0), 1.0);
    return;
  }
  float span = u_vmax - u_vmin;
  float t = span > 0.0 ? (value - u_vmin) / span : 0.5;
  int index = min(int(clamp(t, 0.0, 1.0) * 256.0), 255);
  frag_colour = vec4(texelFetch(u_colormap, ivec2(index, 0), 0).rgb, 1.0);
}
