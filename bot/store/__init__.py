"""Deskmate's own database (SQLAlchemy): feedback now; tickets and customers build on it."""
