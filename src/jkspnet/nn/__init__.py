"""The network: the 313 bins, the model, its inference form, its output distribution, weights,
export, and the backends that run it (:mod:`jkspnet.nn.backends`)."""
