-- Secondary indexes. A rebuild creates them after the bulk load.
-- Service-account lists filter by scope level and node kind, scope target
-- and status in any combination and page by id; these two indexes serve
-- every combination as range scans (see query.listServiceAccountsSQL),
-- the primary key (tenant, id) the unfiltered list. The target index
-- holds namespace accounts only: a tenant-level account's target is its
-- tenant, so the status index serves those, and the index (the widest,
-- and the longest to build in a rebuild) costs nothing for them.
CREATE INDEX service_accounts_status ON service_accounts (tenant, status, scope_level, scope_kind, id);
CREATE INDEX service_accounts_target ON service_accounts (tenant, scope_target, status, scope_level, scope_kind, id) WHERE scope_level = 'namespace';
-- Lookups by chosen name (a path's {id} may be one); most accounts have none.
CREATE INDEX service_accounts_name ON service_accounts (tenant, name) WHERE name <> '';
-- Lookups by number, for dialects whose ids are numeric.
CREATE UNIQUE INDEX service_accounts_num ON service_accounts (num);
-- Role and group searches page by each sortable field, then by id in the
-- same direction (query.Search), forwards or backwards along these.
CREATE INDEX roles_name ON roles (tenant, name, id);
CREATE INDEX roles_default ON roles (tenant, is_default, id);
CREATE INDEX roles_managed ON roles (tenant, managed, id);
CREATE INDEX groups_name ON groups (tenant, name, id);
