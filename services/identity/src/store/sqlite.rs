//! The SQLite store: the shared SQL of `sql.rs`, writing through the single writer
//! connection (which serialises writes, so no row locks are needed) and reading through the
//! read-only pool.

use sqlx::{Pool, Sqlite, SqlitePool};

/// Identity's storage in its own SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteIdentityStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteIdentityStore {
    /// A store writing through `writer` (one connection) and reading through `reader`.
    pub fn new(writer: SqlitePool, reader: SqlitePool) -> Self {
        Self { writer, reader }
    }

    fn writer(&self) -> &Pool<Sqlite> {
        &self.writer
    }

    fn reader(&self) -> &Pool<Sqlite> {
        &self.reader
    }
}

super::sql::identity_store!(SqliteIdentityStore, Sqlite, lock = "");
