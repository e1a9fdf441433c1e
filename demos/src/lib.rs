//! Multi-service demos and benchmarks of the mesh, as examples of this
//! crate (`cargo run --release -p dibao-demos --example <name>`). Nothing
//! here is deployed or imported: the crate exists so that no service names
//! another in any section of its `Cargo.toml`.
//!
//! Layout (`examples/`):
//! - `demo_county`, `demo_sync`, `demo_comparison`: the README's demo, part by part;
//! - `import_bench`: a county's roster file through `ImportRoster`, beside a plain `COPY`;
//! - `sync_bench`: the lag between the rosters, and a backlog after a broker outage;
//! - `pipeline_bench`: outbox → broker → inbox throughput and lag;
//! - `verify_bench`: verification peak, paced latency, where the CPU goes, a campaign against rate limits;
//! - `compare_bench` (with `compare_duckdb.py`, `compare_lists.sql`): the whole comparison beside DuckDB and PostgreSQL;
//! - `continuous_bench`: a roster change to the continuous lists;
//! - `gateway_bench`: the gateway's requests per second per core and the latency it adds.
