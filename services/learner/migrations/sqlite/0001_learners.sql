-- The learner register, its recent searches and its audit of merges and opt-out changes.

CREATE TABLE learners (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uln BIGINT NOT NULL UNIQUE,
    version BIGINT NOT NULL,
    -- 1 active, 2 linked to master_uln.
    status INTEGER NOT NULL CHECK (status IN (1, 2)),
    master_uln BIGINT,
    title TEXT,
    given_name TEXT NOT NULL,
    preferred_given_name TEXT,
    middle_names TEXT,
    family_name TEXT NOT NULL,
    previous_family_name TEXT,
    family_name_at_16 TEXT,
    school_at_16 TEXT,
    address_line_1 TEXT,
    address_line_2 TEXT,
    address_town TEXT,
    address_county_or_city TEXT,
    postcode TEXT NOT NULL,
    date_of_address_capture TEXT,
    date_of_birth TEXT NOT NULL,
    place_of_birth TEXT,
    email_address TEXT,
    gender INTEGER NOT NULL,
    nationality TEXT,
    scottish_candidate_number TEXT,
    verification_type INTEGER NOT NULL,
    other_verification_description TEXT,
    ability_to_share INTEGER NOT NULL,
    notes TEXT,
    upn TEXT,
    uci TEXT,
    -- Matching keys, derived from the fields above by the service.
    norm_given TEXT NOT NULL,
    given_phonetic TEXT NOT NULL,
    norm_family TEXT NOT NULL,
    family_phonetic TEXT NOT NULL,
    norm_preferred_given TEXT,
    preferred_given_phonetic TEXT,
    norm_previous_family TEXT,
    previous_family_phonetic TEXT,
    birth_year INTEGER NOT NULL,
    postcode_compact TEXT NOT NULL,
    norm_school TEXT,
    norm_place_of_birth TEXT,
    norm_email TEXT,
    registered_by TEXT,
    request_id TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    CHECK ((status = 2) = (master_uln IS NOT NULL))
);

-- Blocking keys of the matching, each ending in the ULN so that a capped lookup reads the
-- index in order.
CREATE INDEX learners_by_date_of_birth ON learners (date_of_birth, uln);
CREATE INDEX learners_by_phonetic_names ON learners
    (family_phonetic, given_phonetic, birth_year, uln);
CREATE INDEX learners_by_postcode ON learners (postcode_compact, uln);
CREATE INDEX learners_by_master ON learners (master_uln) WHERE master_uln IS NOT NULL;

-- One active learner per five keys: two concurrent registrations of a person give one ULN.
CREATE UNIQUE INDEX learners_five_keys ON learners
    (norm_given, norm_family, date_of_birth, gender, postcode_compact) WHERE status = 1;

-- Idempotent registration: one learner per (organisation, request id).
CREATE UNIQUE INDEX learners_by_request ON learners (registered_by, request_id)
    WHERE request_id IS NOT NULL;

CREATE TABLE recent_searches (
    organisation_id TEXT NOT NULL,
    keys_hash BLOB NOT NULL,
    -- Microseconds since the Unix epoch, so that comparisons order correctly.
    searched_at INTEGER NOT NULL,
    exact_match_found INTEGER NOT NULL
);
CREATE INDEX recent_searches_by_keys ON recent_searches (organisation_id, keys_hash, searched_at);
CREATE INDEX recent_searches_by_time ON recent_searches (searched_at);

CREATE TABLE learner_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    occurred_at TEXT NOT NULL,
    action TEXT NOT NULL,
    uln BIGINT NOT NULL,
    other_uln BIGINT,
    organisation_id TEXT,
    actor TEXT NOT NULL,
    reason TEXT
);
CREATE INDEX learner_audit_by_uln ON learner_audit (uln, id);
