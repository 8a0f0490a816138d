//! The PostgreSQL store: the shared SQL of `sql.rs` on one pool whose connections work in
//! the `identity` schema, with `FOR UPDATE` on the rows a change reads first.

use sqlx::{PgPool, Pool, Postgres};

/// Identity's storage in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PostgresIdentityStore {
    pool: PgPool,
}

impl PostgresIdentityStore {
    /// A store on `pool` (its connections' `search_path` set to the identity schema).
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    fn writer(&self) -> &Pool<Postgres> {
        &self.pool
    }

    fn reader(&self) -> &Pool<Postgres> {
        &self.pool
    }
}

super::sql::identity_store!(PostgresIdentityStore, Postgres, lock = " FOR UPDATE");
