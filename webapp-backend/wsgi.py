"""WSGI entry point for a plain ``gunicorn wsgi:app`` (run from ``webapp-backend/``).

Index and model come from ``$LOOKALIKE_INDEX`` / ``$LOOKALIKE_MODEL`` or the repository defaults.
Use one worker with threads (``--workers 1 --threads 64``: requests wait for their batch in
their thread, see ``lookalike.batching``): each worker loads its own TensorFlow models, and
TensorFlow does not survive a fork, so do not ``--preload`` either. ``lookalike serve`` sets all
of this up for you.
"""

from lookalike_web import create_app

app = create_app()
