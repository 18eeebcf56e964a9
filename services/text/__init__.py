"""Pure text handling: cleaning, sentence splitting, language detection, stemmers, stop words."""
