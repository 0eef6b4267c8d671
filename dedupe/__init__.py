"""Group articles: copies (near-identical text) and events (one real-world happening)."""
