-- +goose Up
-- Control tables: projector checkpoints and failures, idempotency records
-- and access-token signing keys. Read tables are not migrated here: each
-- projector creates its tables in a schema per generation and a rebuild
-- replaces them (see projections/runner.go).
CREATE TABLE IF NOT EXISTS projection_checkpoints (
    name        text PRIMARY KEY,
    generation  integer     NOT NULL,
    version     integer     NOT NULL,
    seq         bigint      NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS projection_failures (
    projector   text        NOT NULL,
    seq         bigint      NOT NULL,
    event_type  text        NOT NULL,
    error       text        NOT NULL,
    failed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projector, seq)
);

CREATE TABLE IF NOT EXISTS idempotency_keys (
    key_hash      text        PRIMARY KEY,
    request_hash  text        NOT NULL,
    status        integer     NOT NULL DEFAULT 0,
    headers       jsonb       NOT NULL DEFAULT '{}',
    body          bytea,
    created_at    timestamptz NOT NULL DEFAULT now(),
    completed_at  timestamptz
);
CREATE INDEX IF NOT EXISTS idempotency_keys_created ON idempotency_keys (created_at);

CREATE TABLE IF NOT EXISTS signing_keys (
    kid          text        PRIMARY KEY,
    private_key  bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    retired_at   timestamptz
);

-- +goose Down
DROP TABLE IF EXISTS signing_keys;
DROP TABLE IF EXISTS idempotency_keys;
DROP TABLE IF EXISTS projection_failures;
DROP TABLE IF EXISTS projection_checkpoints;
