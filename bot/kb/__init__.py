"""The knowledge base: articles under kb/, their checks, search and training data."""
