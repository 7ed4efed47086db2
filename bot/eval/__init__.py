"""Measuring the bot: eval cases, the runner and its report."""
