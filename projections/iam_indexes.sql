-- Secondary indexes. A rebuild creates them after the bulk load.
-- Service-account lists filter by any combination of scope level, scope
-- target and status and page by id: each combination has an index of its
-- filter columns then id, so a page is a range scan however few rows match
-- (query.listServiceAccountsSQL names only the filters given). No filter
-- uses the primary key (tenant, id).
CREATE INDEX service_accounts_scope ON service_accounts (tenant, scope_level, scope_target, id);
CREATE INDEX service_accounts_level ON service_accounts (tenant, scope_level, id);
CREATE INDEX service_accounts_target ON service_accounts (tenant, scope_target, id);
CREATE INDEX service_accounts_status ON service_accounts (tenant, status, id);
CREATE INDEX service_accounts_level_status ON service_accounts (tenant, scope_level, status, id);
CREATE INDEX service_accounts_target_status ON service_accounts (tenant, scope_target, status, id);
CREATE INDEX service_accounts_scope_status ON service_accounts (tenant, scope_level, scope_target, status, id);
