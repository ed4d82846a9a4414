"""Shared numerical tools: MATLAB-exact resizing, tiling with overlap, background read/write queues."""
