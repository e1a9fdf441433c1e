-- Lists (a)-(g) as the usual SQL does them: a FULL OUTER JOIN of the two
-- rosters' members on the identity number, then aggregates per household
-- pair. Run by compare_bench on PostgreSQL and, through compare_duckdb.py,
-- on DuckDB, over the same data: `m(side, household_id, village, person,
-- flagged)` one row per member, `deaths(person, died_on)`,
-- `officials(person, official)`.
--
-- The join matches pairs of households, not groups: a household split in
-- two on one roster is two pairs here (and each pair's members "differ"),
-- one mapping in the engine. Lists (a), (b), (e), (f) and (g) agree with
-- the engine's; (c) and (d) count pairs.
CREATE TABLE cmp_d AS SELECT household_id AS dh, person FROM m WHERE side = 'dibao';
CREATE TABLE cmp_p AS SELECT household_id AS ph, person FROM m WHERE side = 'poor';
CREATE TABLE cmp_j AS SELECT cmp_d.dh, cmp_p.ph FROM cmp_d FULL OUTER JOIN cmp_p ON cmp_d.person = cmp_p.person;
CREATE TABLE cmp_pairs AS SELECT dh, ph, count(*) AS shared FROM cmp_j WHERE dh IS NOT NULL AND ph IS NOT NULL GROUP BY dh, ph;
CREATE TABLE cmp_dsize AS SELECT dh, count(*) AS n FROM cmp_d GROUP BY dh;
CREATE TABLE cmp_psize AS SELECT ph, count(*) AS n FROM cmp_p GROUP BY ph;
CREATE TABLE list_a AS SELECT s.ph FROM cmp_psize s WHERE NOT EXISTS (SELECT 1 FROM cmp_pairs x WHERE x.ph = s.ph);
CREATE TABLE list_b AS SELECT s.dh FROM cmp_dsize s WHERE NOT EXISTS (SELECT 1 FROM cmp_pairs x WHERE x.dh = s.dh);
CREATE TABLE list_c AS SELECT dh, ph FROM cmp_pairs;
CREATE TABLE list_d AS SELECT x.dh, x.ph FROM cmp_pairs x JOIN cmp_dsize ds ON ds.dh = x.dh JOIN cmp_psize ps ON ps.ph = x.ph WHERE x.shared <> ds.n OR x.shared <> ps.n;
CREATE TABLE list_e AS SELECT f.household_id AS ph FROM (SELECT DISTINCT household_id, flagged FROM m WHERE side = 'poor') f WHERE f.flagged <> EXISTS (SELECT 1 FROM cmp_pairs x WHERE x.ph = f.household_id);
CREATE TABLE list_f AS SELECT cmp_d.dh, cmp_d.person FROM cmp_d JOIN deaths ON deaths.person = cmp_d.person;
CREATE TABLE list_g AS SELECT DISTINCT cmp_d.dh, cmp_d.person, o.official FROM cmp_d JOIN officials o ON o.person = cmp_d.person
