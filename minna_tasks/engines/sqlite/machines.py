"""The table of the state machines a SQLite file has held (store/machines.py keeps the
rules: what is recorded, when, and how it is read back)."""

# A TASK_MIGRATIONS step: one row per machine the file has had; the newest one rules.
MACHINE_DDL = """
    CREATE TABLE IF NOT EXISTS task_machines (
        id INTEGER PRIMARY KEY,
        definition TEXT NOT NULL,
        actor TEXT,
        note TEXT,
        created_at TEXT NOT NULL
    );
"""
