"""Deskmate's Rasa custom actions: thin adapters calling into the bot package."""
