-- A child table, to check that foreign keys are enforced.
CREATE TABLE visit_tag (
    visit_id INTEGER NOT NULL REFERENCES visit (id),
    tag TEXT NOT NULL
);
