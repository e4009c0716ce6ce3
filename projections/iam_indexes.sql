-- Secondary indexes. A rebuild creates them after the bulk load.
CREATE INDEX service_accounts_scope ON service_accounts (tenant, scope_level, scope_target, id);
