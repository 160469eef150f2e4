DROP TRIGGER IF EXISTS "rtree_{t}_geom_insert";
DROP TRIGGER IF EXISTS "rtree_{t}_geom_update6";
DROP TRIGGER IF EXISTS "rtree_{t}_geom_update7";
DROP TRIGGER IF EXISTS "rtree_{t}_geom_update2";
DROP TRIGGER IF EXISTS "rtree_{t}_geom_update5";
DROP TRIGGER IF EXISTS "rtree_{t}_geom_update4";
DROP TRIGGER IF EXISTS "rtree_{t}_geom_delete";
