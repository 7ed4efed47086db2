"""The project's own NLU pieces: its spaCy pipeline and Rasa components."""
