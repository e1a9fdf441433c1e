//! The Chinese names of the contracts' enums, as officers read them: one
//! trait, [`Label`], so every service names a step, a role, an item or a
//! department the same way (the engine's own types implement it too).

use crate::civil_affairs::v1::{ComplaintChannel, ComplaintOutcome, ComplaintStatus, ProcessStep};
use crate::common::v1::{OfficerRole, Relation};
use crate::comparison::v1::ListKind;
use crate::department::v1::{Department, Item};
use crate::events::v1::{BenefitCategory, PovertyCause, Programme};
use crate::poverty_alleviation::v1::PovertyStatus;

/// A name an officer reads, in Simplified Chinese.
pub trait Label {
    fn label(self) -> &'static str;
}

/// A date as officers write it: 2026年12月02日.
pub fn chinese_date(d: time::Date) -> String {
    format!("{:04}年{:02}月{:02}日", d.year(), d.month() as u8, d.day())
}

impl Label for ComplaintChannel {
    fn label(self) -> &'static str {
        match self {
            ComplaintChannel::Unspecified => "未指定",
            ComplaintChannel::Phone => "电话",
            ComplaintChannel::Letter => "来信",
            ComplaintChannel::Visit => "来访",
            ComplaintChannel::Online => "网上",
        }
    }
}

impl Label for ComplaintStatus {
    fn label(self) -> &'static str {
        match self {
            ComplaintStatus::Unspecified => "未指定",
            ComplaintStatus::Received => "已受理",
            ComplaintStatus::Assigned => "已交办",
            ComplaintStatus::Closed => "已办结",
        }
    }
}

impl Label for ComplaintOutcome {
    fn label(self) -> &'static str {
        match self {
            ComplaintOutcome::Unspecified => "未填写",
            ComplaintOutcome::Substantiated => "属实",
            ComplaintOutcome::PartlySubstantiated => "部分属实",
            ComplaintOutcome::Unsubstantiated => "不属实",
        }
    }
}

impl Label for ProcessStep {
    fn label(self) -> &'static str {
        match self {
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
}

impl Label for OfficerRole {
    fn label(self) -> &'static str {
        match self {
            OfficerRole::Unspecified => "未指定",
            OfficerRole::VillageCommittee => "村委会",
            OfficerRole::TownshipCaseworker => "乡镇经办人员",
            OfficerRole::TownshipReviewer => "乡镇审核人员",
            OfficerRole::CountyApprover => "县级审批人员",
            OfficerRole::VerificationOfficer => "核对人员",
            OfficerRole::PovertyOfficer => "扶贫部门人员",
            OfficerRole::CountyOperator => "县级业务操作人员",
            OfficerRole::ProvinceAuditor => "省级审计人员",
            OfficerRole::Administrator => "系统管理员",
            OfficerRole::SystemOperator => "系统运维人员",
        }
    }
}

impl Label for Relation {
    fn label(self) -> &'static str {
        match self {
            Relation::Unspecified => "未指定",
            Relation::Head => "户主",
            Relation::Spouse => "配偶",
            Relation::Child => "子女",
            Relation::Parent => "父母",
            Relation::Grandchild => "孙子女",
            Relation::Grandparent => "祖父母",
            Relation::Sibling => "兄弟姐妹",
            Relation::ChildInLaw => "儿媳女婿",
            Relation::Other => "其他",
        }
    }
}

impl Label for Item {
    fn label(self) -> &'static str {
        match self {
            Item::Unspecified => "未指定",
            Item::Vehicles => "机动车",
            Item::HouseholdRegistration => "户籍",
            Item::Death => "死亡登记",
            Item::Pension => "养老金",
            Item::SocialInsurance => "社会保险缴费",
            Item::Employment => "就业",
            Item::UnemploymentBenefit => "失业保险金",
            Item::Property => "房产",
            Item::BusinessLicence => "工商登记",
            Item::Deposits => "银行存款",
            Item::IncomeTax => "个人所得税",
            Item::DisabilityCertificate => "残疾人证",
            Item::RegisteredIllness => "慢特病和重特大疾病登记",
            Item::MedicalSpending => "医疗费用个人负担",
        }
    }
}

impl Label for Department {
    fn label(self) -> &'static str {
        match self {
            Department::Unspecified => "未指定部门",
            Department::PublicSecurity => "公安",
            Department::HumanResources => "人力资源社会保障",
            Department::Housing => "住房城乡建设",
            Department::Commerce => "市场监管",
            Department::Bank => "银行",
            Department::Tax => "税务",
            Department::DisabilityFederation => "残疾人联合会",
            Department::MedicalInsurance => "医疗保障",
        }
    }
}

impl Label for Programme {
    fn label(self) -> &'static str {
        match self {
            Programme::Unspecified | Programme::Dibao => "低保",
            Programme::SpecialHardship => "特困供养",
        }
    }
}

impl Label for BenefitCategory {
    fn label(self) -> &'static str {
        match self {
            BenefitCategory::Unspecified => "未分类",
            BenefitCategory::A => "A类",
            BenefitCategory::B => "B类",
            BenefitCategory::C => "C类",
        }
    }
}

/// As the registered-poor roster file writes the causes (致贫原因).
impl Label for PovertyCause {
    fn label(self) -> &'static str {
        match self {
            PovertyCause::Unspecified => "未指定",
            PovertyCause::Illness => "因病",
            PovertyCause::Disability => "因残",
            PovertyCause::Education => "因学",
            PovertyCause::Disaster => "因灾",
            PovertyCause::LackOfLabour => "缺劳力",
            PovertyCause::LackOfLand => "缺土地",
            PovertyCause::LackOfCapital => "缺资金",
            PovertyCause::LackOfSkills => "缺技术",
            PovertyCause::SuddenHardship => "突发困难",
            PovertyCause::Other => "其他",
        }
    }
}

impl Label for PovertyStatus {
    fn label(self) -> &'static str {
        match self {
            PovertyStatus::Unspecified => "未指定",
            PovertyStatus::InPoverty => "未脱贫",
            PovertyStatus::Exited => "已脱贫",
            PovertyStatus::Returned => "返贫",
        }
    }
}

/// The comparison's lists (R-CMP-2) as officers know them.
impl Label for ListKind {
    fn label(self) -> &'static str {
        match self {
            ListKind::Unspecified => "未指定",
            ListKind::PoorNotDibao => "建档立卡贫困户未纳入低保或特困",
            ListKind::DibaoNotPoor => "低保或特困户未纳入建档立卡",
            ListKind::OnBoth => "两个名单均有的户",
            ListKind::MembersDiffer => "两个名单家庭成员不一致",
            ListKind::FlagMismatch => "低保贫困户标识不一致",
            ListKind::DeceasedPaid => "公安登记已死亡仍享受待遇",
            ListKind::OfficialRelative => "经办人员及村干部近亲属享受待遇（备案）",
        }
    }
}
