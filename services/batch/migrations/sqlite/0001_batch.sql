-- The batch service's schema: jobs, their records in chunks, the chunks' leases, exceptions
-- with their audited decisions, and when each organisation was last served.

CREATE TABLE batch_job (
    job_id TEXT PRIMARY KEY,
    organisation_id TEXT NOT NULL,
    ukprn TEXT NOT NULL,
    created_by TEXT NOT NULL,
    acting_user_id TEXT,
    job_type INTEGER NOT NULL,
    status INTEGER NOT NULL,
    file_name TEXT NOT NULL,
    file_version TEXT NOT NULL DEFAULT '',
    file_size_bytes INTEGER NOT NULL DEFAULT 0,
    headings TEXT NOT NULL DEFAULT '[]',
    header_values TEXT NOT NULL DEFAULT '[]',
    validation_date TEXT NOT NULL,
    total_records INTEGER NOT NULL DEFAULT 0,
    request_id TEXT,
    failure_message TEXT NOT NULL DEFAULT '',
    create_time TEXT NOT NULL,
    start_time TEXT,
    end_time TEXT,
    update_time TEXT NOT NULL
);

CREATE UNIQUE INDEX batch_job_request ON batch_job (organisation_id, request_id)
    WHERE request_id IS NOT NULL;
CREATE INDEX batch_job_listing ON batch_job (organisation_id, create_time DESC, job_id DESC);
CREATE INDEX batch_job_uploading ON batch_job (create_time) WHERE status = 0;

CREATE TABLE batch_record (
    job_id TEXT NOT NULL REFERENCES batch_job (job_id) ON DELETE CASCADE,
    row_number INTEGER NOT NULL,
    chunk_number INTEGER NOT NULL,
    mis_identifier TEXT NOT NULL,
    input_values TEXT NOT NULL,
    outcome INTEGER,
    result_uln TEXT NOT NULL DEFAULT '',
    duplicate_of_row INTEGER,
    faults TEXT NOT NULL DEFAULT '[]',
    reasons TEXT NOT NULL DEFAULT '[]',
    exception_id TEXT,
    PRIMARY KEY (job_id, row_number)
);

CREATE INDEX batch_record_chunk ON batch_record (job_id, chunk_number);
CREATE INDEX batch_record_duplicate ON batch_record (job_id, duplicate_of_row)
    WHERE duplicate_of_row IS NOT NULL;

CREATE TABLE batch_chunk (
    job_id TEXT NOT NULL REFERENCES batch_job (job_id) ON DELETE CASCADE,
    chunk_number INTEGER NOT NULL,
    organisation_id TEXT NOT NULL,
    job_create_time TEXT NOT NULL,
    ready INTEGER NOT NULL DEFAULT 0,
    done INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    leased_until TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, chunk_number)
);

CREATE INDEX batch_chunk_waiting ON batch_chunk (organisation_id, job_create_time, job_id, chunk_number)
    WHERE ready AND NOT done;

CREATE TABLE batch_organisation_turn (
    organisation_id TEXT PRIMARY KEY,
    last_served_at TEXT NOT NULL
);

CREATE TABLE batch_exception (
    exception_id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL REFERENCES batch_job (job_id) ON DELETE CASCADE,
    row_number INTEGER NOT NULL,
    organisation_id TEXT NOT NULL,
    job_create_time TEXT NOT NULL,
    status INTEGER NOT NULL,
    candidates BLOB NOT NULL,
    resolution_action INTEGER,
    resolution_uln TEXT,
    resolution_note TEXT,
    resolved_by TEXT,
    resolve_time TEXT,
    create_time TEXT NOT NULL,
    update_time TEXT NOT NULL,
    UNIQUE (job_id, row_number)
);

CREATE INDEX batch_exception_listing
    ON batch_exception (organisation_id, status, job_create_time DESC, job_id, row_number);

-- Every decision on an exception: who, when, what, and the request id that makes a retry
-- answer the first decision.
CREATE TABLE batch_exception_decision (
    decision_id TEXT PRIMARY KEY,
    exception_id TEXT NOT NULL REFERENCES batch_exception (exception_id) ON DELETE CASCADE,
    organisation_id TEXT NOT NULL,
    actor TEXT NOT NULL,
    action INTEGER NOT NULL,
    detail TEXT NOT NULL,
    request_id TEXT,
    decide_time TEXT NOT NULL
);

CREATE UNIQUE INDEX batch_exception_decision_request
    ON batch_exception_decision (organisation_id, request_id) WHERE request_id IS NOT NULL;
CREATE INDEX batch_exception_decision_exception ON batch_exception_decision (exception_id);
