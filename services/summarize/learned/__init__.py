"""Learned extractive summaries: BERTSUM's recipe, a frozen encoder and a small trained head."""
