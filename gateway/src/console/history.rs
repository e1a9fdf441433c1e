//! 查询记录: who looked at one person's data, for the officer answering a
//! citizen — every read in every service's access log, by time, with the
//! officer, the system, the purpose and the items. The identity number is
//! posted in a form, never put in a URL; the services decide whether this
//! officer may read the history (their roles, their villages).

use dibao_proto::common::v1::DivisionCode;
use dibao_proto::types::{IdentityNumber, masked_identity};
use http::StatusCode;

use super::html::{Page, esc, table};
use super::{Form, Visit};

fn service_name(service: &str) -> &str {
    match service {
        "civil-affairs" => "民政（低保）",
        "poverty-alleviation" => "乡村振兴（防返贫监测）",
        "verification-hub" => "核对平台",
        "roster-comparison" => "名单比对",
        s if s.starts_with("adapter-") => "部门数据接口",
        s => s,
    }
}

/// What became of the access, as an officer reads it (the log keeps codes).
fn outcome(code: &str) -> String {
    let (head, rest) = code.split_once(':').map_or((code, ""), |(h, r)| (h, r.trim()));
    let word = match head {
        "read" => "查阅",
        "asked" => "已发出查询",
        "answered" => "已答复",
        "partial" => "部分答复",
        "refused" => "被拒绝",
        "failed" => "未完成",
        "reported" => "已出具报告",
        _ => return code.to_owned(),
    };
    if let Some(n) = rest.strip_suffix(" records").and_then(|n| n.parse::<u64>().ok()) {
        return format!("{word}（{n}条记录）");
    }
    if rest.is_empty() { word.to_owned() } else { format!("{word}：{rest}") }
}

fn caller_name(caller: &str) -> &str {
    match caller {
        "gateway" => "网关（办公台及接口）",
        "verification-hub" => "核对平台",
        "roster-comparison" => "名单比对",
        "civil-affairs" => "民政（低保）",
        "poverty-alleviation" => "乡村振兴（防返贫监测）",
        c => c,
    }
}

fn form(v: &Visit, person: &str, village: &str, error: Option<&str>) -> String {
    let alert = error.map(|e| super::html::alert("history-error", e)).unwrap_or_default();
    format!(
        "{alert}<form method=\"post\" action=\"/history\" class=\"inline\" autocomplete=\"off\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <label for=\"person\">查询对象身份证号</label><input id=\"person\" name=\"person\" required maxlength=\"18\" value=\"{person}\">\
         <label for=\"village\">所在村（区划代码，可不填）</label><input id=\"village\" name=\"village\" maxlength=\"12\" value=\"{village}\">\
         <button type=\"submit\" id=\"search\">查询</button></form>\
         <p class=\"hint\">用于答复群众“谁查看过我的信息”。本次查询本身也记入查询记录。</p>",
        csrf = esc(&v.csrf),
        person = esc(person),
        village = esc(village),
    )
}

/// `GET /history`: the form.
pub fn form_page(v: &Visit) -> Page {
    Page::ok("查询记录", form(v, "", "", None))
}

/// `POST /history`: the records.
pub async fn search(v: &Visit, posted: &Form) -> Page {
    let person = posted.get("person").trim().to_uppercase();
    let village = posted.get("village").trim().to_owned();
    if let Err(e) = IdentityNumber::parse(&person) {
        let message = format!("person：{}", e.reason);
        return Page::with_status(StatusCode::BAD_REQUEST, "查询记录", form(v, &person, &village, Some(&message)));
    }
    let division = Some(village.as_str()).filter(|v| !v.is_empty()).map(|v| DivisionCode { code: v.to_owned() });
    let collected = match crate::history::collect(&v.gw, &v.session.claims, &person, division).await {
        Ok(c) => c,
        Err(status) => {
            let message = super::refusal(&status, "您无权查看此人的查询记录（须为其所在区划的工作人员）");
            return Page::with_status(StatusCode::FORBIDDEN, "查询记录", form(v, &person, &village, Some(&message)));
        }
    };
    let rows: Vec<Vec<String>> = collected
        .records
        .iter()
        .map(|(service, a)| {
            let items = a
                .items
                .iter()
                .filter_map(|i| dibao_proto::department::v1::Item::try_from(*i).ok())
                .map(dibao_proto::labels::Label::label)
                .collect::<Vec<_>>()
                .join("、");
            vec![
                esc(&super::html::timestamp(a.at.as_ref())),
                esc(service_name(service)),
                esc(if a.officer_id.is_empty() { "（系统）" } else { &a.officer_id }),
                esc(caller_name(&a.caller)),
                esc(&a.purpose),
                esc(&items),
                esc(&outcome(&a.outcome)),
            ]
        })
        .collect();
    let mut body = form(v, &person, &village, None);
    body.push_str(&format!("<h2>{}的查询记录（共{}条）</h2>", esc(&masked_identity(&person)), collected.records.len()));
    body.push_str(&table(
        "accesses",
        &["时间", "记录系统", "查询人工号", "经由", "用途", "事项", "结果"],
        &rows,
        "没有查询记录",
    ));
    for (service, message) in &collected.unavailable {
        body.push_str(&super::html::alert(
            "",
            &format!("{}暂时无法答复（{message}），记录可能不全", service_name(service)),
        ));
    }
    Page::ok("查询记录", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_read_in_chinese() {
        assert_eq!(outcome("read"), "查阅");
        assert_eq!(outcome("refused: 不在授权范围内"), "被拒绝：不在授权范围内");
        assert_eq!(outcome("answered: 2 records"), "已答复（2条记录）");
        assert_eq!(outcome("something-new"), "something-new");
    }
}
