//! The county's registered-poor roster (建档立卡花名册) imported household
//! by household on the platform's import driver, a migration tool: each
//! household new under the county's household number is registered; a line
//! for one already registered changes nothing when it is what is stored
//! and is refused otherwise, naming the process that changes it (members,
//! status, the office's flag).

use deadpool_postgres::Transaction;
use dibao_platform::Error;
use dibao_platform::store::import::{ImportRow, Imported};
use dibao_platform::trust::officer::Officer;
use dibao_proto::poverty_alleviation::v1 as pb;
use dibao_proto::types::InvalidField;

use crate::households::{self, Registered, Roster, Via};

/// The roster's side of the import driver, for the officer who imports.
pub struct RosterImport<'a>(pub &'a Roster, pub &'a Officer);

impl ImportRow for RosterImport<'_> {
    type Row = pb::ImportRosterRequest;

    fn row_number(row: &Self::Row) -> i64 {
        row.row
    }

    async fn apply(&self, tx: &Transaction<'_>, row: &Self::Row) -> Result<Imported, Error> {
        let h = row.household.as_ref().ok_or_else(|| InvalidField::new("household", "必填项缺失"))?;
        let source = h.household_id.trim();
        if source.is_empty() {
            return Err(InvalidField::new("household.household_id", "请填写建档立卡户编号").into());
        }
        Ok(match households::register(self.0, self.1, tx, h, Via::File(source)).await? {
            Registered::Unchanged => Imported::Unchanged,
            Registered::New(_) | Registered::Changed => Imported::Applied,
        })
    }
}
