-- Per-principal data keys, each wrapped by the key-encryption key. Not a
-- projection: nothing in the log can rebuild a key, so no rebuild drops
-- this table. A destroyed key leaves its row, with wrapped NULL and
-- erased_at set, so the id can never get a key again.
CREATE TABLE IF NOT EXISTS privacy_keys (
    principal_id text        PRIMARY KEY,
    wrapped      bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    erased_at    timestamptz,
    CHECK ((wrapped IS NULL) = (erased_at IS NOT NULL))
);

-- Instance secrets, wrapped by the key-encryption key: the HMAC key of
-- unique-value reservation subjects.
CREATE TABLE IF NOT EXISTS privacy_secrets (
    name       text        PRIMARY KEY,
    wrapped    bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
