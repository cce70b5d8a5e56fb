/**
 * The log's PostgreSQL schema, as ordered numbered migrations (log-store/migrations.ts runs them under an advisory
 * lock). Append-only is enforced in the database itself, as in SQLite (log-store/schema.ts): entries, checkpoints and
 * cosignatures refuse UPDATE, DELETE and TRUNCATE; a hash tile may only grow (its new contents extend the old ones)
 * until it is full; the tree never shrinks. BIGINT columns hold sizes and indexes (read back as exact integers below
 * 2^53, log-store/postgres.ts), BYTEA hashes and leaves.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const PG_MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'initial schema: tree, entries, tiles, checkpoints, cosignatures, append-only triggers',
    sql: `
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

-- The current tree: one row, advanced only by compare-and-swap on tree_size.
CREATE TABLE tree (
  id         SMALLINT PRIMARY KEY CHECK (id = 1),
  tree_size  BIGINT NOT NULL CHECK (tree_size >= 0),
  root_hash  BYTEA NOT NULL CHECK (length(root_hash) = 32),
  checkpoint TEXT NOT NULL
);

CREATE TABLE entries (
  idx             BIGINT PRIMARY KEY CHECK (idx >= 0),
  leaf            BYTEA NOT NULL,
  leaf_hash       BYTEA NOT NULL CHECK (length(leaf_hash) = 32),
  file_hash       BYTEA NOT NULL UNIQUE CHECK (length(file_hash) = 32),
  ecosystem       TEXT NOT NULL,
  name            TEXT NOT NULL,
  version         TEXT NOT NULL,
  sha256          BYTEA NOT NULL,
  integrated_time BIGINT NOT NULL
);
CREATE INDEX entries_by_leaf_hash ON entries (leaf_hash);
CREATE INDEX entries_by_package ON entries (ecosystem, name, version, idx);
CREATE INDEX entries_by_sha256 ON entries (sha256, idx);

-- Hash tiles (C2SP tlog-tiles), one row per tile holding its widest contents; a full tile also holds its inner levels.
CREATE TABLE tiles (
  level SMALLINT NOT NULL CHECK (level BETWEEN 0 AND 63),
  idx   BIGINT NOT NULL CHECK (idx BETWEEN 0 AND 70368744177663),
  width SMALLINT NOT NULL CHECK (width BETWEEN 1 AND 256),
  data  BYTEA NOT NULL CHECK (length(data) = width * 32),
  inner_levels BYTEA CHECK (inner_levels IS NULL OR (width = 256 AND length(inner_levels) = 254 * 32)),
  PRIMARY KEY (level, idx)
);

-- Every checkpoint the log signed (log signature only), and the cosignatures witnesses returned for it.
CREATE TABLE checkpoints (
  tree_size  BIGINT PRIMARY KEY CHECK (tree_size >= 0),
  root_hash  BYTEA NOT NULL CHECK (length(root_hash) = 32),
  note       TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE cosignatures (
  tree_size BIGINT NOT NULL REFERENCES checkpoints (tree_size),
  key_name  TEXT NOT NULL,
  key_id    BYTEA NOT NULL,
  line      TEXT NOT NULL,
  PRIMARY KEY (tree_size, key_name, key_id)
);

CREATE FUNCTION pkglog_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'integrity_constraint_violation';
END $$;

CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON entries
  FOR EACH ROW EXECUTE FUNCTION pkglog_refuse('entries are append-only');
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON entries
  FOR EACH STATEMENT EXECUTE FUNCTION pkglog_refuse('entries are append-only');
CREATE TRIGGER checkpoints_immutable BEFORE UPDATE OR DELETE ON checkpoints
  FOR EACH ROW EXECUTE FUNCTION pkglog_refuse('published checkpoints are immutable');
CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON checkpoints
  FOR EACH STATEMENT EXECUTE FUNCTION pkglog_refuse('published checkpoints are immutable');
CREATE TRIGGER cosignatures_immutable BEFORE UPDATE OR DELETE ON cosignatures
  FOR EACH ROW EXECUTE FUNCTION pkglog_refuse('cosignatures are immutable');
CREATE TRIGGER cosignatures_no_truncate BEFORE TRUNCATE ON cosignatures
  FOR EACH STATEMENT EXECUTE FUNCTION pkglog_refuse('cosignatures are immutable');
CREATE TRIGGER tiles_no_delete BEFORE DELETE ON tiles
  FOR EACH ROW EXECUTE FUNCTION pkglog_refuse('hash tiles are append-only');
CREATE TRIGGER tiles_no_truncate BEFORE TRUNCATE ON tiles
  FOR EACH STATEMENT EXECUTE FUNCTION pkglog_refuse('hash tiles are append-only');
CREATE TRIGGER tiles_only_grow BEFORE UPDATE ON tiles
  FOR EACH ROW WHEN (OLD.width = 256 OR NEW.width <= OLD.width OR substring(NEW.data FROM 1 FOR length(OLD.data)) <> OLD.data
                     OR NEW.level <> OLD.level OR NEW.idx <> OLD.idx)
  EXECUTE FUNCTION pkglog_refuse('hash tiles only grow');
CREATE TRIGGER tree_only_grows BEFORE UPDATE ON tree
  FOR EACH ROW WHEN (NEW.tree_size < OLD.tree_size OR NEW.id <> OLD.id)
  EXECUTE FUNCTION pkglog_refuse('the tree never shrinks');
CREATE TRIGGER tree_no_delete BEFORE DELETE ON tree
  FOR EACH ROW EXECUTE FUNCTION pkglog_refuse('the tree row is never deleted');
CREATE TRIGGER tree_no_truncate BEFORE TRUNCATE ON tree
  FOR EACH STATEMENT EXECUTE FUNCTION pkglog_refuse('the tree row is never deleted');
`,
  },
];
