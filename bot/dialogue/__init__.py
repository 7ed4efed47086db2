"""What the bot decides to say: pure logic the Rasa actions call into."""
