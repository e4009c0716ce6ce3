-- Invitations. The address is read through the key store; once an
-- invitation is accepted its data key is destroyed and the row keeps
-- "[erased]" (the address lives on as the user's), a deleted invitation
-- leaves no row. The registration token is never here: it is derived.
CREATE TABLE invitations (
    tenant      text NOT NULL,
    id          text NOT NULL,
    email       text NOT NULL,
    -- [{"role": id, "namespaces": [...]}] as the log stores them.
    roles       jsonb NOT NULL,
    groups      text[] NOT NULL,
    superadmin  boolean NOT NULL,
    create_user boolean NOT NULL,
    invited_by  text NOT NULL,
    sent_at     timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    accepted_by text NOT NULL DEFAULT '',
    accepted_at timestamptz,
    PRIMARY KEY (tenant, id)
);
-- A tenant's invitations by address, and a user's across tenants.
CREATE INDEX invitations_email ON invitations (email, tenant);
