-- Trust boundary (issue 25). A device account comes with a set-up code,
-- shown once to whoever the account is issued to and kept as SHA-256:
-- a device is set up at a gateway only with it, so nobody sets up (or
-- evicts) a device by computing an account id. Accounts issued before
-- have none until the operator issues one (`tracecast service account
-- code`).
ALTER TABLE service_accounts ADD COLUMN code_hash TEXT;
