-- The date-of-birth blocking key alone brought every learner born that day (about 100 at two
-- million learners, about 2,000 at national scale) into every search. It now takes only those
-- born that day whose family name or given name sounds the same as the searched one, or whose
-- family name starts with the same letter (a misspelling that changes the sound of both names
-- still finds its learner): three lookups, each reading its index in ULN order so that a
-- capped lookup stops early.
DROP INDEX learners_by_date_of_birth;
CREATE INDEX learners_by_birth_and_family ON learners (date_of_birth, family_phonetic, uln);
CREATE INDEX learners_by_birth_and_given ON learners (date_of_birth, given_phonetic, uln);
CREATE INDEX learners_by_birth_and_initial
    ON learners (date_of_birth, substr(norm_family, 1, 1), uln);
