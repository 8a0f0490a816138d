//! Database plumbing shared by the LRS services: PostgreSQL and SQLite pools, schemas and migrations.
