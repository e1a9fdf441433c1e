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

pub fn step_label(step: ProcessStep) -> &'static str {
    match step {
        ProcessStep::Unspecified => "未指定",
        ProcessStep::Application => "申请",
        ProcessStep::HomeVisit => "入户调查",
        ProcessStep::VillageReview => "民主评议",
        ProcessStep::Verification => "信息核对",
        ProcessStep::TownshipReview => "乡镇审核",
        ProcessStep::PublicNotice => "公示",
        ProcessStep::CountyApproval => "县级审批",
        ProcessStep::Enrolment => "确认享受",
        ProcessStep::Exit => "退出申请",
    }
}

pub fn role_label(role: OfficerRole) -> &'static str {
    match role {
        OfficerRole::Unspecified => "未指定",
        OfficerRole::VillageCommittee => "村委会",
        OfficerRole::TownshipCaseworker => "乡镇经办人员",
        OfficerRole::TownshipReviewer => "乡镇审核人员",
        OfficerRole::CountyApprover => "县级审批人员",
        OfficerRole::VerificationOfficer => "核对人员",
        OfficerRole::PovertyOfficer => "扶贫部门人员",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_run_in_the_order_of_the_policy() {
        let mut step = ProcessStep::Application;
        let mut order = vec![step];
        while next(step) != step {
            step = next(step);
            order.push(step);
        }
        assert_eq!(
            order.iter().map(|s| step_label(*s)).collect::<Vec<_>>(),
            ["申请", "入户调查", "民主评议", "信息核对", "乡镇审核", "公示", "县级审批", "确认享受"]
        );
        let mut step = ProcessStep::Exit;
        let mut exit = vec![step_label(step)];
        loop {
            step = Kind::Exit.next(step);
            exit.push(step_label(step));
            if step == ProcessStep::Exit {
                break;
            }
        }
        assert_eq!(exit, ["退出申请", "入户调查", "乡镇审核", "县级审批", "退出申请"]);
    }
}
