"""deepnotes: a deep-learning-for-computer-vision curriculum that runs.

Importing the package is cheap (no torch); the heavy parts live in submodules:
deepnotes.registry, deepnotes.models, deepnotes.data, deepnotes.train, deepnotes.report.
"""

__version__ = "0.1.0"
