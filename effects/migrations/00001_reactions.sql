-- +goose Up
-- Reactions' own positions and attempts. They are control tables, not read
-- tables: a rebuild of the projections never touches them, so it never
-- runs a side effect again.
CREATE TABLE IF NOT EXISTS effect_positions (
    reaction    text PRIMARY KEY,
    seq         bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per (reaction, event) the reaction wanted, written before the
-- effect is performed. state: running (an attempt is under way, or was
-- when its process stopped), retry (waiting for next_at), done, failed
-- (permanent, or out of attempts) and unknown (an attempt whose outcome
-- was never recorded; never performed again).
CREATE TABLE IF NOT EXISTS effect_attempts (
    reaction    text        NOT NULL,
    event_id    text        NOT NULL,
    seq         bigint      NOT NULL,
    event_type  text        NOT NULL,
    state       text        NOT NULL,
    attempts    integer     NOT NULL DEFAULT 1,
    next_at     timestamptz,
    last_error  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (reaction, event_id),
    CONSTRAINT effect_attempts_state CHECK (state IN ('running', 'retry', 'done', 'failed', 'unknown'))
);
CREATE INDEX IF NOT EXISTS effect_attempts_open ON effect_attempts (reaction, next_at) WHERE state <> 'done';

-- +goose Down
DROP TABLE IF EXISTS effect_attempts;
DROP TABLE IF EXISTS effect_positions;
