"""E-mail as a second channel of a handed-off conversation: replies out, the visitor's replies in."""
