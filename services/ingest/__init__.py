"""Getting text in: documents parsed in a sandboxed child process, and web pages fetched safely."""
