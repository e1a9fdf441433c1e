-- Lists (a)-(g) as the usual SQL does them: a FULL OUTER JOIN of the two
-- rosters' members on the identity number, aggregates per household pair,
-- and the pairs joined into groups (households linked through shared
-- members, as the engine maps them) by a recursive CTE. Run by
-- compare_bench on PostgreSQL and, through compare_duckdb.py, on DuckDB,
-- over the same data: `m(side, household_id, village, person, flagged)`
-- one row per member, `deaths(person, died_on)`, `officials(person, official)`.
--
-- (c) and (d) are per group, as the engine's: a household split in two on
-- one roster is one mapping whose members may differ, not two pairs.
CREATE TABLE cmp_d AS SELECT household_id AS dh, person FROM m WHERE side = 'dibao';
CREATE TABLE cmp_p AS SELECT household_id AS ph, person FROM m WHERE side = 'poor';
CREATE TABLE cmp_j AS SELECT cmp_d.dh, cmp_p.ph FROM cmp_d FULL OUTER JOIN cmp_p ON cmp_d.person = cmp_p.person;
CREATE TABLE cmp_pairs AS SELECT dh, ph, count(*) AS shared FROM cmp_j WHERE dh IS NOT NULL AND ph IS NOT NULL GROUP BY dh, ph;
CREATE TABLE cmp_dsize AS SELECT dh, count(*) AS n FROM cmp_d GROUP BY dh;
CREATE TABLE cmp_psize AS SELECT ph, count(*) AS n FROM cmp_p GROUP BY ph;
CREATE TABLE list_a AS SELECT s.ph FROM cmp_psize s WHERE NOT EXISTS (SELECT 1 FROM cmp_pairs x WHERE x.ph = s.ph);
CREATE TABLE list_b AS SELECT s.dh FROM cmp_dsize s WHERE NOT EXISTS (SELECT 1 FROM cmp_pairs x WHERE x.dh = s.dh);
-- Each dibao household with every dibao household it reaches through
-- shared members; the group is named by the least of them.
CREATE TABLE cmp_reach AS WITH RECURSIVE reach(dh, g) AS (SELECT DISTINCT dh, dh FROM cmp_pairs UNION SELECT b.dh, r.g FROM reach r JOIN cmp_pairs a ON a.dh = r.dh JOIN cmp_pairs b ON b.ph = a.ph) SELECT dh, g FROM reach;
CREATE TABLE cmp_gd AS SELECT dh, min(g) AS g FROM cmp_reach GROUP BY dh;
CREATE TABLE cmp_gp AS SELECT x.ph, min(d.g) AS g FROM cmp_pairs x JOIN cmp_gd d ON d.dh = x.dh GROUP BY x.ph;
CREATE TABLE list_c AS SELECT DISTINCT g FROM cmp_gd;
-- A group's members differ when one of its people is on one roster only.
CREATE TABLE list_d AS SELECT DISTINCT g FROM (SELECT d.g FROM cmp_j JOIN cmp_gd d ON d.dh = cmp_j.dh WHERE cmp_j.ph IS NULL UNION ALL SELECT p.g FROM cmp_j JOIN cmp_gp p ON p.ph = cmp_j.ph WHERE cmp_j.dh IS NULL) x;
CREATE TABLE list_e AS SELECT f.household_id AS ph FROM (SELECT DISTINCT household_id, flagged FROM m WHERE side = 'poor') f WHERE f.flagged <> EXISTS (SELECT 1 FROM cmp_pairs x WHERE x.ph = f.household_id);
CREATE TABLE list_f AS SELECT cmp_d.dh, cmp_d.person FROM cmp_d JOIN deaths ON deaths.person = cmp_d.person;
CREATE TABLE list_g AS SELECT DISTINCT cmp_d.dh, cmp_d.person, o.official FROM cmp_d JOIN officials o ON o.person = cmp_d.person
