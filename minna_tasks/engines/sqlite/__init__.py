"""SQLite: the default engine, one file (`.spine/minna.db`) that every process on one host shares."""
