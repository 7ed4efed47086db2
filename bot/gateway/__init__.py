"""The Deskmate gateway: the one public door (widget, agent inbox, JSON API) in front of the bot."""
