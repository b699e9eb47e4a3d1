"""Django's SQLite backend plus the statistics upkeep SQLite asks applications to do (base.py)."""
