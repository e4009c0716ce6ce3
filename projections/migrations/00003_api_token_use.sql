-- +goose Up
-- When each personal API token was last used, by the servers' clocks. Not
-- in the log (a write per request would be the log's busiest stream) and
-- not a projection (a rebuild must not forget it).
CREATE TABLE IF NOT EXISTS api_token_use (
    token_id     text PRIMARY KEY,
    last_used_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE IF EXISTS api_token_use;
