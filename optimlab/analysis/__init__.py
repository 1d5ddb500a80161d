"""Analysis of objectives: critical points, convexity, curvature. Import from the submodules."""
