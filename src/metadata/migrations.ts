/**
 * The metadata schema as ordered migrations. Each entry runs once, in its own transaction, and
 * is recorded in `schema_migrations`; never edit an applied entry, append a new one.
 * @module
 */

/** Ordered schema migrations; index + 1 is the version. */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE repositories (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
  ) STRICT;

  -- Blobs whose bytes are in the blob store (the store is the truth for bytes, this for names).
  CREATE TABLE blobs (
    digest TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    created_at INTEGER NOT NULL
  ) STRICT, WITHOUT ROWID;

  -- A blob is readable in a repository only when linked to it (pushed, mounted or mirrored).
  CREATE TABLE repository_blobs (
    repository_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest TEXT NOT NULL REFERENCES blobs(digest),
    linked_at INTEGER NOT NULL,
    PRIMARY KEY (repository_id, digest)
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX repository_blobs_by_digest ON repository_blobs(digest);

  -- Manifest bytes, exactly as pushed, stored once whatever the number of repositories.
  CREATE TABLE manifests (
    digest TEXT PRIMARY KEY,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    content BLOB NOT NULL,
    artifact_type TEXT,
    subject TEXT,
    annotations TEXT,
    created_at INTEGER NOT NULL
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX manifests_by_subject ON manifests(subject) WHERE subject IS NOT NULL;

  -- What a manifest needs: config and layers (blob) or child manifests (manifest).
  CREATE TABLE manifest_references (
    manifest TEXT NOT NULL REFERENCES manifests(digest) ON DELETE CASCADE,
    reference TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('blob', 'manifest')),
    PRIMARY KEY (manifest, reference)
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX manifest_references_by_reference ON manifest_references(reference);

  CREATE TABLE repository_manifests (
    repository_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    digest TEXT NOT NULL REFERENCES manifests(digest),
    pushed_at INTEGER NOT NULL,
    PRIMARY KEY (repository_id, digest)
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX repository_manifests_by_digest ON repository_manifests(digest);

  CREATE TABLE tags (
    repository_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    digest TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (repository_id, name),
    FOREIGN KEY (repository_id, digest)
      REFERENCES repository_manifests(repository_id, digest) ON DELETE CASCADE
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX tags_by_digest ON tags(repository_id, digest);

  CREATE TABLE uploads (
    id TEXT PRIMARY KEY,
    repository_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    started_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  ) STRICT, WITHOUT ROWID;
  `,
];
