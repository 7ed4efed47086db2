"""Models: which to serve (models.py: reuse by training fingerprint), the checks a model must pass (`python -m bot check`), and retraining."""
