"""Deskmate: an open-source support bot for subscription businesses."""
