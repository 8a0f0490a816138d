-- A parent table for the crate's own tests.
CREATE TABLE visit (
    id BIGINT PRIMARY KEY,
    note TEXT NOT NULL
);
