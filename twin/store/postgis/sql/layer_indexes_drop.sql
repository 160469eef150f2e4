DROP INDEX {s}."{t}_geom";
DROP INDEX {s}."{t}_fp";
DROP INDEX {s}."{t}_changeset";
