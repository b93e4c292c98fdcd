"""The photo pipeline: the Colorizer, its backends, guided colour."""
