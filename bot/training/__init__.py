"""Guard rails for models: the checks a model must pass (`python -m bot check`) and retraining."""
