DROP INDEX IF EXISTS "{t}_fp";
DROP INDEX IF EXISTS "{t}_changeset";
