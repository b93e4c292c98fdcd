"""What :mod:`jkspnet.nn.export` writes and its defaults, kept apart from it (no torch) so that the
command line builds its parser without importing torch."""

TORCHSCRIPT_EXTRA = "jkspnet.json"
"""The TorchScript file's extra file that carries the weights' default size and temperature."""
DEFAULT_OPSET = 18
FORMATS = ("onnx", "torchscript")
