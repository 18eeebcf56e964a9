"""Language models: engines, generation, the LLM summarizer and adaptation."""
