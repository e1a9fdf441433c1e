-- The real-estate register's front-end view (前置库): how a department that
-- shares data by database rather than by API shows its records to the
-- mesh — its own column names and types, one row per flat and owner.
CREATE SCHEMA IF NOT EXISTS qzk;
CREATE OR REPLACE VIEW qzk.zjj_bdc_fwxx AS
SELECT record_id                               AS ywh,
       attrs->>'certificate'                   AS bdcqzh,
       attrs->>'address'                       AS zl,
       (quantity / 100.0)::numeric(12, 2)      AS jzmj,
       (attrs->>'registered_on')::date         AS djsj,
       as_of                                   AS gxsj,
       person                                  AS qlrzjhm
FROM dept_record
WHERE department = 'DEPARTMENT_HOUSING' AND item = 'ITEM_PROPERTY';
