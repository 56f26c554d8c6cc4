"""The multimodal tagger: split, label space, text and image inputs, model, baseline.

Modules that build or run the Keras model import tensorflow at their top (``text`` imports it
lazily); ``split``, ``labels``, ``scoring`` and ``baseline`` are numpy, polars and sklearn only.
"""
