//! The approval process (R-PROC-1): the order of steps and who signs each.

use dibao_proto::civil_affairs::v1::ProcessStep;
use dibao_proto::common::v1::OfficerRole;

/// Days a household stays on public notice before county approval (R-PROC-1).
pub const NOTICE_DAYS: i64 = 7;

/// What an application is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Enrol,
    Exit,
}

impl Kind {
    pub fn from_db(s: &str) -> Kind {
        if s == "exit" { Kind::Exit } else { Kind::Enrol }
    }

    pub fn as_db(self) -> &'static str {
        match self {
            Kind::Enrol => "enrol",
            Kind::Exit => "exit",
        }
    }

    /// The step after `step`. An exit is visited, reviewed by the township
    /// and approved by the county.
    pub fn next(self, step: ProcessStep) -> ProcessStep {
        match (self, step) {
            (Kind::Enrol, s) => next(s),
            (Kind::Exit, ProcessStep::Exit) => ProcessStep::HomeVisit,
            (Kind::Exit, ProcessStep::HomeVisit) => ProcessStep::TownshipReview,
            (Kind::Exit, ProcessStep::TownshipReview) => ProcessStep::CountyApproval,
            (Kind::Exit, ProcessStep::CountyApproval) => ProcessStep::Exit,
            (Kind::Exit, s) => s,
        }
    }
}

/// The step after `step` of an application, for an approved step.
pub fn next(step: ProcessStep) -> ProcessStep {
    match step {
        ProcessStep::Application => ProcessStep::HomeVisit,
        ProcessStep::HomeVisit => ProcessStep::VillageReview,
        ProcessStep::VillageReview => ProcessStep::Verification,
        ProcessStep::Verification => ProcessStep::TownshipReview,
        ProcessStep::TownshipReview => ProcessStep::PublicNotice,
        ProcessStep::PublicNotice => ProcessStep::CountyApproval,
        ProcessStep::CountyApproval => ProcessStep::Enrolment,
        ProcessStep::Enrolment | ProcessStep::Exit | ProcessStep::Unspecified => step,
    }
}

/// Roles that may sign `step`.
pub fn signers(step: ProcessStep) -> &'static [OfficerRole] {
    match step {
        ProcessStep::Application | ProcessStep::HomeVisit => {
            &[OfficerRole::TownshipCaseworker, OfficerRole::VillageCommittee]
        }
        ProcessStep::Exit => &[OfficerRole::TownshipCaseworker, OfficerRole::CountyApprover],
        ProcessStep::VillageReview => &[OfficerRole::VillageCommittee],
        ProcessStep::Verification => &[OfficerRole::VerificationOfficer],
        ProcessStep::TownshipReview => &[OfficerRole::TownshipReviewer],
        ProcessStep::PublicNotice => &[OfficerRole::TownshipCaseworker],
        ProcessStep::CountyApproval | ProcessStep::Enrolment => &[OfficerRole::CountyApprover],
        ProcessStep::Unspecified => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dibao_proto::labels::Label;

    #[test]
    fn steps_run_in_the_order_of_the_policy() {
        let mut step = ProcessStep::Application;
        let mut order = vec![step];
        while next(step) != step {
            step = next(step);
            order.push(step);
        }
        assert_eq!(
            order.iter().map(|s| s.label()).collect::<Vec<_>>(),
            ["申请", "入户调查", "民主评议", "信息核对", "乡镇审核", "公示", "县级审批", "确认享受"]
        );
        let mut step = ProcessStep::Exit;
        let mut exit = vec![step.label()];
        loop {
            step = Kind::Exit.next(step);
            exit.push(step.label());
            if step == ProcessStep::Exit {
                break;
            }
        }
        assert_eq!(exit, ["退出申请", "入户调查", "乡镇审核", "县级审批", "退出申请"]);
    }
}
