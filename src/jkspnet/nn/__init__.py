"""The network: the model, its inference form, its output distribution, weights, export."""
