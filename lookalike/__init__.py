"""lookalike: find the celebrities a face looks like.

The public verbs are re-exported here as the pipeline's modules land; see README.md.
"""

__version__ = "0.1.0"
