-- A gateway can be suspended at the service like a device account (issue
-- 30, DESIGN.md "000"): a suspended gateway's calls to the service are
-- refused until it is activated again.
ALTER TABLE gateways ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
