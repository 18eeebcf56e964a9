"""Speech to text: voice notes and audio files become transcripts (offline Whisper, or any
OpenAI-compatible transcription server)."""
