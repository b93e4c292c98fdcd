"""Colour: the LAB conversions, decoding ab from the network's bins, upsampling."""
