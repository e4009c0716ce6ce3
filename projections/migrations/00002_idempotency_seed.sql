-- +goose Up
-- A keyed request holds its claim for a lease, and carries an id seed that
-- every attempt of it hands to the commands it runs: what it creates gets
-- that id, so a retry after a crash finds what the first attempt created
-- instead of creating it again. Rows from before these columns count their
-- lease from created_at and get a seed when taken over.
ALTER TABLE idempotency_keys ADD COLUMN IF NOT EXISTS id_seed text;
ALTER TABLE idempotency_keys ADD COLUMN IF NOT EXISTS lease_until timestamptz;

-- +goose Down
ALTER TABLE idempotency_keys DROP COLUMN IF EXISTS lease_until;
ALTER TABLE idempotency_keys DROP COLUMN IF EXISTS id_seed;
