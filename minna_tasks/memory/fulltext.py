"""The FTS5 search now lives in engines/sqlite/fulltext.py; these names stay importable
here for memory/database.py (the SQLite engine's commit indexes the backlog)."""

from ..engines.sqlite.fulltext import FTS_BATCH, index_backlog, indexed_range

__all__ = ["FTS_BATCH", "index_backlog", "indexed_range"]
