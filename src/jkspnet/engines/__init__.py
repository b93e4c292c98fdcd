"""Engines that run the pipeline over many inputs: batches, films, evaluation, metrics."""
