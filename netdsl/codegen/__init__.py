"""Generators, one module per target: ``torch`` (source + module), ``onnx`` (model), and
``weights`` (the numpy tensors both share). Each asks the ops how to lower themselves."""
