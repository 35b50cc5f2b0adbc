"""Backprop Studio's headless engine: graphs, layers, Numba kernels, training, export.

Never imports Qt: everything the studio does can be done and tested from here.
"""

__version__ = "0.1.0"
