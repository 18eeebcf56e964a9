"""Group digests: the service, topics, the word cloud and Telegram Desktop chat exports."""
