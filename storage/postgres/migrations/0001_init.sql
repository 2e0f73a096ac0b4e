-- Configuration: connections, models, keys and their assignments.
-- Times are UTC unix microseconds; durations are nanoseconds.
-- Identifiers and the usage grouping columns use the "C" collation, so
-- that listing and summary order is byte order on every server, whatever
-- the database's default collation.

CREATE TABLE config_version (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	version BIGINT NOT NULL
);
INSERT INTO config_version (id, version) VALUES (1, 0);

CREATE TABLE connections (
	id          TEXT COLLATE "C" PRIMARY KEY,
	name        TEXT NOT NULL UNIQUE,
	provider    TEXT NOT NULL,
	endpoint    TEXT NOT NULL DEFAULT '',
	credentials BYTEA,   -- sealed with the store's Sealer; NULL when none
	settings    TEXT,    -- JSON object; NULL when none
	created_at  BIGINT NOT NULL,
	updated_at  BIGINT NOT NULL
);

CREATE TABLE models (
	id            TEXT COLLATE "C" PRIMARY KEY,
	name          TEXT NOT NULL,
	remote        TEXT NOT NULL,
	connection_id TEXT COLLATE "C" NOT NULL REFERENCES connections (id),
	weight        INTEGER NOT NULL DEFAULT 0,
	created_at    BIGINT NOT NULL,
	updated_at    BIGINT NOT NULL,
	UNIQUE (name, connection_id)
);
CREATE INDEX models_connection ON models (connection_id);

CREATE TABLE keys (
	id         TEXT COLLATE "C" PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	hash       TEXT NOT NULL UNIQUE,
	prefix     TEXT NOT NULL DEFAULT '',
	expires_at BIGINT,   -- NULL: never
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);

-- A key's assignments are part of the key: written with it in one
-- transaction, deleted with it.
CREATE TABLE assignments (
	id            TEXT COLLATE "C" PRIMARY KEY,
	key_id        TEXT COLLATE "C" NOT NULL REFERENCES keys (id) ON DELETE CASCADE,
	position      INTEGER NOT NULL,
	connection_id TEXT COLLATE "C" REFERENCES connections (id),
	model_id      TEXT COLLATE "C" REFERENCES models (id),
	tps           DOUBLE PRECISION NOT NULL DEFAULT 0,
	burst         INTEGER NOT NULL DEFAULT 0,
	token_limit   BIGINT NOT NULL DEFAULT 0,
	token_window  BIGINT NOT NULL DEFAULT 0,
	CHECK ((connection_id IS NULL) <> (model_id IS NULL))
);
CREATE INDEX assignments_key ON assignments (key_id, position);
CREATE INDEX assignments_connection ON assignments (connection_id);
CREATE INDEX assignments_model ON assignments (model_id);

-- The usage ledger: append-only, one row per request.
CREATE TABLE usage_records (
	id                TEXT COLLATE "C" PRIMARY KEY,
	time              BIGINT NOT NULL,
	request_id        TEXT NOT NULL DEFAULT '',
	key_id            TEXT COLLATE "C" NOT NULL DEFAULT '',
	assignment_id     TEXT COLLATE "C" NOT NULL DEFAULT '',
	model             TEXT COLLATE "C" NOT NULL DEFAULT '',
	remote_model      TEXT NOT NULL DEFAULT '',
	connection_id     TEXT COLLATE "C" NOT NULL DEFAULT '',
	prompt_tokens     BIGINT NOT NULL DEFAULT 0,
	completion_tokens BIGINT NOT NULL DEFAULT 0,
	total_tokens      BIGINT NOT NULL DEFAULT 0,
	estimated         BOOLEAN NOT NULL DEFAULT FALSE,
	status            INTEGER NOT NULL DEFAULT 0,
	latency           BIGINT NOT NULL DEFAULT 0,
	streamed          BOOLEAN NOT NULL DEFAULT FALSE,
	endpoint          TEXT NOT NULL DEFAULT ''
);
CREATE INDEX usage_records_time ON usage_records (time);
CREATE INDEX usage_records_key_time ON usage_records (key_id, time);
