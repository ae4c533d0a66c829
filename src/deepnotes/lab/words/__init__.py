"""Chapter: words. bow.py: counting words: TF-IDF's weights against raw counts on a real corpus
(C41) and what a bag of words cannot see, word order (C57); vectors.py: word vectors (C39, C40, C58, C59)."""
