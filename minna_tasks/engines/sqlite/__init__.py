"""SQLite: the default engine, one file (`.spine/minna.db`) every process on a host shares."""
