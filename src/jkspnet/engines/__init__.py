"""Engines that run the pipeline over many inputs: planning and batches, evaluation, metrics and
their report."""
