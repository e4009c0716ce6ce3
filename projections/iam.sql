CREATE TABLE tenants (
    id                            text PRIMARY KEY,
    name                          text NOT NULL,
    credential_default_lifetime_s bigint NOT NULL,
    credential_max_lifetime_s     bigint NOT NULL,
    scope_levels                  text[] NOT NULL,
    created_at                    timestamptz NOT NULL,
    updated_at                    timestamptz NOT NULL
);

-- Users never hold a password or its verifier: has_password only says
-- whether one is set.
-- num is the aggregate's number (see Numbers in docs/architecture.md):
-- the log sequence of its creating event.
CREATE TABLE users (
    id           text PRIMARY KEY,
    num          bigint NOT NULL UNIQUE,
    username     text NOT NULL,
    email        text NOT NULL,
    first_name   text NOT NULL DEFAULT '',
    last_name    text NOT NULL DEFAULT '',
    display_name text NOT NULL DEFAULT '',
    status       text NOT NULL DEFAULT 'active',
    superadmin   boolean NOT NULL DEFAULT false,
    restricted   boolean NOT NULL DEFAULT false,
    has_password boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL
);

CREATE TABLE user_tenants (
    user_id text NOT NULL,
    tenant  text NOT NULL,
    PRIMARY KEY (user_id, tenant)
);

CREATE TABLE user_roles (
    user_id      text NOT NULL,
    role         text NOT NULL,
    tenant       text NOT NULL,
    scope_level  text NOT NULL,
    scope_target text NOT NULL,
    PRIMARY KEY (user_id, role, tenant, scope_level, scope_target)
);

-- Service accounts are listed per tenant in id order (ids are ULIDs, so
-- that is creation order); the primary key serves keyset pagination.
CREATE TABLE service_accounts (
    tenant       text NOT NULL,
    id           text NOT NULL,
    num          bigint NOT NULL,
    -- The client-chosen name, '' when none. Unique per tenant, but the
    -- write side's reservation enforces that, not this table.
    name         text NOT NULL DEFAULT '',
    client_id    text NOT NULL,
    display_name text NOT NULL,
    description  text NOT NULL,
    scope_level  text NOT NULL,
    scope_target text NOT NULL,
    -- The namespace node's kind (folder or project); '' for level tenant.
    scope_kind   text NOT NULL,
    roles        text[] NOT NULL,
    status       text NOT NULL,
    -- The actor of the creating event.
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    -- When each of the account's credentials expires, in Unix microseconds:
    -- a page of accounts counts their active credentials from its own rows
    -- instead of a credentials lookup a row. credentials holds the rows.
    credential_expiries bigint[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant, id)
);

-- Credential metadata only: verifiers stay in the event log, secrets nowhere.
CREATE TABLE credentials (
    tenant             text NOT NULL,
    service_account_id text NOT NULL,
    id                 text NOT NULL,
    created_by         text NOT NULL,
    created_at         timestamptz NOT NULL,
    expires_at         timestamptz NOT NULL,
    PRIMARY KEY (tenant, service_account_id, id)
);

-- Personal API token metadata; the token and its verifier are not here.
-- When a token was last used is kept apart (api_token_use), written by the
-- servers, not projected from the log.
CREATE TABLE api_tokens (
    user_id    text NOT NULL,
    id         text NOT NULL,
    name       text NOT NULL DEFAULT '',
    description text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL,
    expires_at timestamptz,
    PRIMARY KEY (user_id, id)
);

-- Service accounts' API token metadata; the token and its verifier are
-- not here. Rows go with their account.
CREATE TABLE service_account_api_tokens (
    tenant             text NOT NULL,
    service_account_id text NOT NULL,
    id                 text NOT NULL,
    name               text NOT NULL,
    description        text NOT NULL DEFAULT '',
    created_by         text NOT NULL,
    created_at         timestamptz NOT NULL,
    expires_at         timestamptz,
    PRIMARY KEY (tenant, service_account_id, id)
);

-- The instance's settings: one row once any was set; a NULL column keeps
-- its default (commands.DefaultAPITokenLifetime, MaxAPITokenLifetime).
CREATE TABLE instance_settings (
    id                           int PRIMARY KEY CHECK (id = 1),
    api_token_default_lifetime_s bigint,
    api_token_max_lifetime_s     bigint,
    -- What tenants created from now on start with; NULL: the default.
    credential_default_lifetime_s bigint,
    credential_max_lifetime_s     bigint,
    scope_levels                  text[],
    updated_at                   timestamptz NOT NULL
);
