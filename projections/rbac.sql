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

-- Exact totals of a tenant's unfiltered searches: a page of a tenant with
-- many rows must not count them all. Each counted table's statement
-- triggers keep its row (table, tenant) here, from the rows a statement
-- inserted or deleted (COPY included); tenants never change on update.
CREATE TABLE row_counts (
    tbl    text NOT NULL,
    tenant text NOT NULL,
    n      bigint NOT NULL,
    PRIMARY KEY (tbl, tenant)
);

CREATE FUNCTION count_inserted() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO row_counts (tbl, tenant, n) SELECT TG_TABLE_NAME, tenant, count(*) FROM new_rows GROUP BY tenant
        ON CONFLICT (tbl, tenant) DO UPDATE SET n = row_counts.n + EXCLUDED.n;
    RETURN NULL;
END $$;

CREATE FUNCTION count_deleted() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE row_counts c SET n = c.n - d.n FROM (SELECT tenant, count(*) AS n FROM old_rows GROUP BY tenant) d
        WHERE c.tbl = TG_TABLE_NAME AND c.tenant = d.tenant;
    RETURN NULL;
END $$;

CREATE TRIGGER roles_inserted AFTER INSERT ON roles REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION count_inserted();
CREATE TRIGGER roles_deleted AFTER DELETE ON roles REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION count_deleted();
CREATE TRIGGER groups_inserted AFTER INSERT ON groups REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION count_inserted();
CREATE TRIGGER groups_deleted AFTER DELETE ON groups REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION count_deleted();
CREATE TRIGGER bindings_inserted AFTER INSERT ON bindings REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION count_inserted();
CREATE TRIGGER bindings_deleted AFTER DELETE ON bindings REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION count_deleted();
