-- Configuration: connections, models, keys and their assignments.
-- Times are UTC unix microseconds; durations are nanoseconds.

CREATE TABLE config_version (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	version INTEGER NOT NULL
);
INSERT INTO config_version (id, version) VALUES (1, 0);

CREATE TABLE connections (
	id          TEXT PRIMARY KEY,
	name        TEXT NOT NULL UNIQUE,
	provider    TEXT NOT NULL,
	endpoint    TEXT NOT NULL DEFAULT '',
	credentials BLOB,    -- sealed with the store's Sealer; NULL when none
	settings    TEXT,    -- JSON object; NULL when none
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL
);

CREATE TABLE models (
	id            TEXT PRIMARY KEY,
	name          TEXT NOT NULL,
	remote        TEXT NOT NULL,
	connection_id TEXT NOT NULL REFERENCES connections (id),
	weight        INTEGER NOT NULL DEFAULT 0,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL,
	UNIQUE (name, connection_id)
);
CREATE INDEX models_connection ON models (connection_id);

CREATE TABLE keys (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	hash       TEXT NOT NULL UNIQUE,
	prefix     TEXT NOT NULL DEFAULT '',
	expires_at INTEGER,  -- NULL: never
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);

-- A key's assignments are part of the key: written with it in one
-- transaction, deleted with it.
CREATE TABLE assignments (
	id            TEXT PRIMARY KEY,
	key_id        TEXT NOT NULL REFERENCES keys (id) ON DELETE CASCADE,
	position      INTEGER NOT NULL,
	connection_id TEXT REFERENCES connections (id),
	model_id      TEXT REFERENCES models (id),
	tps           REAL NOT NULL DEFAULT 0,
	burst         INTEGER NOT NULL DEFAULT 0,
	token_limit   INTEGER NOT NULL DEFAULT 0,
	token_window  INTEGER NOT NULL DEFAULT 0,
	CHECK ((connection_id IS NULL) <> (model_id IS NULL))
);
CREATE INDEX assignments_key ON assignments (key_id, position);
CREATE INDEX assignments_connection ON assignments (connection_id);
CREATE INDEX assignments_model ON assignments (model_id);

-- The usage ledger: append-only, one row per request.
CREATE TABLE usage_records (
	id                TEXT PRIMARY KEY,
	time              INTEGER NOT NULL,
	request_id        TEXT NOT NULL DEFAULT '',
	key_id            TEXT NOT NULL DEFAULT '',
	assignment_id     TEXT NOT NULL DEFAULT '',
	model             TEXT NOT NULL DEFAULT '',
	remote_model      TEXT NOT NULL DEFAULT '',
	connection_id     TEXT NOT NULL DEFAULT '',
	prompt_tokens     INTEGER NOT NULL DEFAULT 0,
	completion_tokens INTEGER NOT NULL DEFAULT 0,
	total_tokens      INTEGER NOT NULL DEFAULT 0,
	estimated         INTEGER NOT NULL DEFAULT 0,
	status            INTEGER NOT NULL DEFAULT 0,
	latency           INTEGER NOT NULL DEFAULT 0,
	streamed          INTEGER NOT NULL DEFAULT 0,
	endpoint          TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE INDEX usage_records_time ON usage_records (time);
CREATE INDEX usage_records_key_time ON usage_records (key_id, time);
