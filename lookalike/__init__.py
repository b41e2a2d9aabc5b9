"""lookalike: find the celebrities a face looks like.

The public verbs are re-exported here as the pipeline's modules land; see README.md.
"""

import os

# TensorFlow's C++ start-up chatter (oneDNN, CPU features) hides our own output; warnings and
# errors still show. A user's own setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
