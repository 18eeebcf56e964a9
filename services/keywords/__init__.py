"""Key phrases: candidate phrases, embedding relevance and diversification."""
