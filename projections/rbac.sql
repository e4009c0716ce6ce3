-- Roles with their rules as the log stores them (events.Rule as JSON).
CREATE TABLE roles (
    tenant      text NOT NULL,
    id          text NOT NULL,
    num         bigint NOT NULL UNIQUE,
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    managed     boolean NOT NULL DEFAULT false,
    is_default  boolean NOT NULL DEFAULT false,
    rules       jsonb NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant, id)
);

-- Explicit bindings (BindingCreated). Service accounts' own role lists
-- are bindings too; they are read from service_accounts.roles.
CREATE TABLE bindings (
    tenant       text NOT NULL,
    id           text NOT NULL,
    role         text NOT NULL,
    subject_kind text NOT NULL,
    subject_id   text NOT NULL,
    scope_level  text NOT NULL,
    scope_target text NOT NULL,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX bindings_subject ON bindings (subject_id);

CREATE TABLE groups (
    tenant      text NOT NULL,
    id          text NOT NULL,
    num         bigint NOT NULL UNIQUE,
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant, id)
);

CREATE TABLE group_members (
    tenant      text NOT NULL,
    group_id    text NOT NULL,
    member_kind text NOT NULL,
    member_id   text NOT NULL,
    membership  text NOT NULL,
    PRIMARY KEY (tenant, group_id, member_id)
);
CREATE INDEX group_members_member ON group_members (member_id);
