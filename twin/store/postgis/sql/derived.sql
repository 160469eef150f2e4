-- What twin derives and keeps beside the store: the vital signs' sums, alerts, work orders and their events
-- (created IF NOT EXISTS: also the migration from schema version 3).
CREATE TABLE IF NOT EXISTS {s}.twin_vitals (indicator text COLLATE "C" NOT NULL,
  area text COLLATE "C" NOT NULL, changeset bigint NOT NULL, base integer NOT NULL, n double precision NOT NULL,
  v double precision NOT NULL, d double precision NOT NULL);
CREATE INDEX IF NOT EXISTS twin_vitals_at ON {s}.twin_vitals (indicator, changeset);
CREATE TABLE IF NOT EXISTS {s}.twin_vitals_state (indicator text PRIMARY KEY, changeset bigint NOT NULL,
  signature text NOT NULL, base bigint NOT NULL, pending bigint NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.twin_alerts (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  rule text NOT NULL, subject text NOT NULL, object text NOT NULL, committee text, subdistrict text, district text,
  status text NOT NULL, severity text NOT NULL, distance double precision, geometry text, message text NOT NULL,
  opened_at text NOT NULL, opened_changeset bigint NOT NULL, acknowledged_at text, acknowledged_by text,
  closed_at text, closed_by text, closed_reason text, ended_at text);
CREATE INDEX IF NOT EXISTS twin_alerts_active ON {s}.twin_alerts (rule, ended_at);
CREATE TABLE IF NOT EXISTS {s}.twin_alert_state (rule text PRIMARY KEY, changeset bigint NOT NULL,
  signature text NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.twin_work_orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, alert bigint,
  title text NOT NULL, note text, lon double precision NOT NULL, lat double precision NOT NULL,
  committee text NOT NULL, subdistrict text, district text, status text NOT NULL, resources text NOT NULL,
  opened_at text NOT NULL, opened_by text NOT NULL, accepted_at text, accepted_by text, handling_at text,
  handling_by text, closed_at text, closed_by text, log text NOT NULL);
CREATE TABLE IF NOT EXISTS {s}.twin_watch_events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind text NOT NULL, ref bigint NOT NULL, status text NOT NULL, at text NOT NULL, by text, committee text,
  subdistrict text, district text);
