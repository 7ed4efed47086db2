"""The project's spaCy pipeline (blank English, lookup lemmatizer, entity ruler), built offline into var/spacy/."""
