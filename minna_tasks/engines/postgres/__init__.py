"""The PostgreSQL engine: the same schema, projection and guarantees as SQLite's, on a
server that agents on many hosts share (psycopg 3, the optional extra `postgres`)."""
