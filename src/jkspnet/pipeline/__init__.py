"""The photo pipeline: the Colorizer around a network, its spec (the options, torch-free), and
guided colour's propagation."""
