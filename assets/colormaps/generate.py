#!/usr/bin/env python3
"""Regenerates the colormap tables in this folder from matplotlib (Debian python3-matplotlib).

Run once by a developer; the CSV files are committed and the program never needs Python.
Each file has 256 rows "r,g,b" with components in [0, 1]. The tables feed both the GL
heatmap texture and the QPainter figure export, so screen and paper use the same colours.
"""
import pathlib
import matplotlib

HERE = pathlib.Path(__file__).resolve().parent
# name in AttnLab -> name in matplotlib
MAPS = {"viridis": "viridis", "magma": "magma", "cividis": "cividis", "coolwarm": "coolwarm"}

for ours, theirs in MAPS.items():
    cmap = matplotlib.colormaps[theirs].resampled(256)
    rows = [cmap(i / 255.0)[:3] for i in range(256)]
    text = "".join(f"{r:.6f},{g:.6f},{b:.6f}\n" for r, g, b in rows)
    (HERE / f"{ours}.csv").write_text(text)
    print(f"{ours}.csv: {len(rows)} rows")
