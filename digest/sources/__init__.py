"""Paper sources: each module turns one response format into PaperIn entries."""
