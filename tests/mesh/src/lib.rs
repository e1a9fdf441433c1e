//! Several services of the mesh wired together in this process, each over
//! mTLS on port 0 with its own schema of one fresh database and a Tansu
//! broker of its own. Built on the one harness (`dibao-tests`); a crate of
//! its own because it names the services, which the harness must not (every
//! service's own tests use the harness).
//!
//! Layout:
//! - [`verification`]: the department simulator, the six adapters, civil affairs and the hub;
//! - [`rosters`]: civil affairs, the poverty office and the roster comparison;
//! - [`exits`]: a dibao household's exit signed through every step;
//! - [`gateway`]: the gateway in front of them, its registry, officers logged in;
//! - [`payments`]: a county's month paid, roll and bank's return;
//! - [`all`]: every service and one department's adapter, for tests that follow officers across them.

pub mod all;
pub mod exits;
pub mod gateway;
pub mod payments;
pub mod rosters;
pub mod verification;
