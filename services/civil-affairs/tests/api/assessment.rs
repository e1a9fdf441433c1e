//! Assessment with every income line explained in Chinese (R-INC-*, R-BEN-*).

use dibao_proto::civil_affairs::v1::*;
use dibao_proto::common::v1::{Money, YearMonth};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assessment_explains_every_line_in_chinese() {
    let mut r = start().await;
    save_policy(&mut r.client, policy(50_000, 2026, 4)).await;
    let a = r
        .client
        .assess_household(AssessHouseholdRequest {
            household: Some(household()),
            income: vec![
                wage(120_000),
                IncomeItem {
                    kind: IncomeKind::CentralBasicPension as i32,
                    label: "基础养老金".into(),
                    monthly: Some(Money { fen: 10_300 }),
                    ..Default::default()
                },
            ],
            month: Some(YearMonth { year: 2026, month: 6 }),
            ..Default::default()
        })
        .await
        .expect("assess")
        .into_inner();
    assert!(a.eligible);
    assert_eq!(a.per_capita_income, Some(Money { fen: 30_000 }));
    assert_eq!(a.monthly_amount, Some(Money { fen: 50_000 }));
    assert_eq!(a.lines[1].treatment, "excluded");
    assert_eq!(a.lines[1].rule_id, "R-INC-2");
    assert!(a.explanation.contains("不计入收入：基础养老金103.00元"), "{}", a.explanation);
}
