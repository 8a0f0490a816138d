-- Identity: organisations, users, refresh tokens, machine credentials, signing keys, the
-- published lists, idempotency keys and the audit log.

CREATE TABLE organisations (
    organisation_id UUID PRIMARY KEY,
    kind TEXT NOT NULL,
    lrb_type TEXT,
    display_name TEXT NOT NULL,
    ukprn TEXT UNIQUE,
    organisation_reference TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX organisations_by_name ON organisations (display_name, organisation_id);

CREATE TABLE users (
    user_id UUID PRIMARY KEY,
    organisation_id UUID REFERENCES organisations (organisation_id),
    username TEXT NOT NULL,
    username_key TEXT NOT NULL UNIQUE,
    given_name TEXT NOT NULL,
    family_name TEXT NOT NULL,
    email TEXT NOT NULL,
    roles TEXT NOT NULL,
    state TEXT NOT NULL,
    uln TEXT,
    password_hash TEXT NOT NULL,
    password_change_required BOOLEAN NOT NULL,
    failed_sign_ins BIGINT NOT NULL DEFAULT 0,
    locked_until TIMESTAMPTZ,
    version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    last_sign_in_at TIMESTAMPTZ
);
CREATE INDEX users_by_organisation ON users (organisation_id, username_key);

CREATE TABLE refresh_tokens (
    token_hash BYTEA PRIMARY KEY,
    family_id UUID NOT NULL,
    user_id UUID NOT NULL REFERENCES users (user_id),
    issued_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_by_user ON refresh_tokens (user_id);

CREATE TABLE client_credentials (
    client_id UUID PRIMARY KEY,
    organisation_id UUID NOT NULL REFERENCES organisations (organisation_id),
    display_name TEXT NOT NULL,
    roles TEXT NOT NULL,
    service TEXT,
    secret_hash BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);
CREATE UNIQUE INDEX client_credentials_one_per_service
    ON client_credentials (service) WHERE service IS NOT NULL AND revoked_at IS NULL;
CREATE INDEX client_credentials_by_organisation
    ON client_credentials (organisation_id, created_at, client_id);

CREATE TABLE idempotency_keys (
    caller TEXT NOT NULL,
    operation TEXT NOT NULL,
    request_id TEXT NOT NULL,
    resource_id UUID NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (caller, operation, request_id)
);

CREATE TABLE signing_keys (
    key_id TEXT PRIMARY KEY,
    public_key_pem TEXT NOT NULL,
    private_key_nonce BYTEA NOT NULL,
    private_key_sealed BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    retired_at TIMESTAMPTZ,
    expires_at TIMESTAMPTZ
);
-- At most one current (unretired) key, so two replicas starting or rotating at once cannot
-- both install one.
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys ((retired_at IS NULL))
    WHERE retired_at IS NULL;

CREATE TABLE providers (
    ukprn TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    town TEXT NOT NULL,
    postcode TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE awarding_organisations (
    number TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    acronym TEXT NOT NULL,
    status TEXT NOT NULL,
    ukprn TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE audit_events (
    sequence BIGSERIAL PRIMARY KEY,
    audit_event_id UUID NOT NULL UNIQUE,
    event_time TIMESTAMPTZ NOT NULL,
    actor_id TEXT NOT NULL,
    actor_organisation_id UUID,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    target_organisation_id UUID,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    request_id TEXT NOT NULL
);
CREATE INDEX audit_events_by_actor_organisation ON audit_events (actor_organisation_id, sequence);
CREATE INDEX audit_events_by_target_organisation ON audit_events (target_organisation_id, sequence);
