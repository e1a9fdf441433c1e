"""DuckDB beside the roster comparison's engine, on the same data.

Run by compare_bench (python3 compare_duckdb.py DIR): loads DIR/members.csv,
deaths.csv and officials.csv, runs compare_lists.sql, prints one JSON line:
load and compare seconds, list sizes (a)..(g), peak RSS. Needs `pip install duckdb`.
"""
import json
import os
import resource
import sys
import time

import duckdb

directory = sys.argv[1]
sql = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "compare_lists.sql"), encoding="utf-8").read()
# Comments first (they may hold semicolons), then one statement per semicolon.
code = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
statements = [s.strip() for s in code.split(";") if s.strip()]

con = duckdb.connect()
con.execute("SET threads TO 2")
started = time.time()
con.execute(
    f"CREATE TABLE m AS SELECT * FROM read_csv('{directory}/members.csv', header = true, "
    "columns = {'side': 'VARCHAR', 'household_id': 'VARCHAR', 'village': 'VARCHAR', 'person': 'VARCHAR', 'flagged': 'BOOLEAN'})"
)
con.execute(
    f"CREATE TABLE deaths AS SELECT * FROM read_csv('{directory}/deaths.csv', header = true, "
    "columns = {'person': 'VARCHAR', 'died_on': 'DATE'})"
)
con.execute(
    f"CREATE TABLE officials AS SELECT * FROM read_csv('{directory}/officials.csv', header = true, "
    "columns = {'person': 'VARCHAR', 'official': 'VARCHAR'})"
)
load = time.time() - started
started = time.time()
for statement in statements:
    con.execute(statement)
compare = time.time() - started
sizes = [con.execute(f"SELECT count(*) FROM list_{k}").fetchone()[0] for k in "abcdefg"]
peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"load_s": load, "compare_s": compare, "sizes": sizes, "peak_mib": peak_mib}))
