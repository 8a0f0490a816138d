-- A parent table for the crate's own tests.
CREATE TABLE visit (
    id INTEGER PRIMARY KEY,
    note TEXT NOT NULL
);
