"""The knowledge base: articles under kb/ (parsing, live reload), their check, and the KB search."""
