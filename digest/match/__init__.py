"""Matching papers against interests: the language, the batch index and the engine.

`query` parses a line into a tree, `text` normalises words, `index` indexes one batch of
papers, `engine` evaluates each distinct interest once and ranks (`Matcher` is the seam
delivery uses), `acronyms` pairs acronyms with their long forms, `naive` is the
paper-by-paper reference. Nothing here imports the rest of digest.
"""
