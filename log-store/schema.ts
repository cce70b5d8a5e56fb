/**
 * The log's SQLite schema. Append-only is enforced in the database itself: entries, checkpoints and cosignatures refuse
 * UPDATE and DELETE; a hash tile may only grow (its new contents must extend the old ones) until it is full.
 * The schema is applied as ordered numbered migrations (SQLITE_MIGRATIONS, run by log-store/migrations.ts); step 1 is
 * the schema every database made before migrations existed has (its meta.schema_version is 1).
 */
import type { Migration } from './pg-schema.ts';

export const SCHEMA_VERSION = 1;

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;

-- The current tree: one row, advanced only by compare-and-swap on tree_size.
CREATE TABLE IF NOT EXISTS tree (
  id         INTEGER PRIMARY KEY CHECK (id = 1),
  tree_size  INTEGER NOT NULL,
  root_hash  BLOB NOT NULL,
  checkpoint TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS entries (
  idx             INTEGER PRIMARY KEY,
  leaf            BLOB NOT NULL,
  leaf_hash       BLOB NOT NULL,
  file_hash       BLOB NOT NULL UNIQUE,   -- SHA-256 of ecosystem/name/version/filename: one artifact per file
  ecosystem       TEXT NOT NULL,
  name            TEXT NOT NULL,
  version         TEXT NOT NULL,
  sha256          BLOB NOT NULL,
  integrated_time INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_by_leaf_hash ON entries (leaf_hash);
CREATE INDEX IF NOT EXISTS entries_by_package ON entries (ecosystem, name, version, idx);
CREATE INDEX IF NOT EXISTS entries_by_sha256 ON entries (sha256, idx);

-- Hash tiles (C2SP tlog-tiles), one row per tile holding its widest contents; narrower partial tiles are prefixes.
-- A full tile also holds its inner levels 1…7 (254 hashes, computed by integration), so proofs read nodes instead of
-- rehashing. A rowid table keyed by id = level·2^46 + idx: large blobs read several times faster than WITHOUT ROWID.
CREATE TABLE IF NOT EXISTS tiles (
  id    INTEGER PRIMARY KEY,
  level INTEGER NOT NULL CHECK (level BETWEEN 0 AND 63),
  idx   INTEGER NOT NULL CHECK (idx BETWEEN 0 AND 70368744177663),
  width INTEGER NOT NULL CHECK (width BETWEEN 1 AND 256),
  data  BLOB NOT NULL CHECK (length(data) = width * 32),
  inner BLOB CHECK (inner IS NULL OR (width = 256 AND length(inner) = 254 * 32)),
  CHECK (id = level * 70368744177664 + idx)
);

-- Every checkpoint the log signed (log signature only), and the cosignatures witnesses returned for it.
CREATE TABLE IF NOT EXISTS checkpoints (
  tree_size  INTEGER PRIMARY KEY,
  root_hash  BLOB NOT NULL,
  note       TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS cosignatures (
  tree_size INTEGER NOT NULL REFERENCES checkpoints (tree_size),
  key_name  TEXT NOT NULL,
  key_id    BLOB NOT NULL,
  line      TEXT NOT NULL,
  PRIMARY KEY (tree_size, key_name, key_id)
) WITHOUT ROWID;

CREATE TRIGGER IF NOT EXISTS entries_no_update BEFORE UPDATE ON entries
  BEGIN SELECT RAISE(ABORT, 'entries are append-only'); END;
CREATE TRIGGER IF NOT EXISTS entries_no_delete BEFORE DELETE ON entries
  BEGIN SELECT RAISE(ABORT, 'entries are append-only'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_no_update BEFORE UPDATE ON checkpoints
  BEGIN SELECT RAISE(ABORT, 'published checkpoints are immutable'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_no_delete BEFORE DELETE ON checkpoints
  BEGIN SELECT RAISE(ABORT, 'published checkpoints are immutable'); END;
CREATE TRIGGER IF NOT EXISTS cosignatures_no_update BEFORE UPDATE ON cosignatures
  BEGIN SELECT RAISE(ABORT, 'cosignatures are immutable'); END;
CREATE TRIGGER IF NOT EXISTS cosignatures_no_delete BEFORE DELETE ON cosignatures
  BEGIN SELECT RAISE(ABORT, 'cosignatures are immutable'); END;
CREATE TRIGGER IF NOT EXISTS tiles_only_grow BEFORE UPDATE ON tiles
  WHEN OLD.width = 256 OR NEW.width <= OLD.width OR substr(NEW.data, 1, length(OLD.data)) != OLD.data
       OR NEW.id != OLD.id OR NEW.level != OLD.level OR NEW.idx != OLD.idx
  BEGIN SELECT RAISE(ABORT, 'hash tiles only grow'); END;
CREATE TRIGGER IF NOT EXISTS tiles_no_delete BEFORE DELETE ON tiles
  BEGIN SELECT RAISE(ABORT, 'hash tiles are append-only'); END;
CREATE TRIGGER IF NOT EXISTS tree_only_grows BEFORE UPDATE ON tree
  WHEN NEW.tree_size < OLD.tree_size
  BEGIN SELECT RAISE(ABORT, 'the tree never shrinks'); END;
`;

export const SQLITE_MIGRATIONS: Migration[] = [
  { version: 1, name: 'initial schema: tree, entries, tiles, checkpoints, cosignatures, append-only triggers', sql: SCHEMA },
];
