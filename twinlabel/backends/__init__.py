"""Database backends: Django's, with what the product needs on top."""
