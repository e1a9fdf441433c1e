//! Types with invariants that the wire carries as plain strings and numbers.
//!
//! Every conversion from the wire returns [`InvalidField`], which names the
//! field and says in Simplified Chinese what is wrong, so a server can answer
//! `InvalidArgument` that an officer can act on.

use std::fmt;

use time::{Date, Month};

use crate::common::v1 as pb;

/// A field of a request, row or event that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidField {
    /// Dotted path of the field, e.g. `household.members[2].identity_number`.
    pub field: String,
    /// What is wrong, in Simplified Chinese, for the officer.
    pub reason: String,
}

impl InvalidField {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { field: field.into(), reason: reason.into() }
    }

    /// Prefixes the field path, for errors raised inside nested messages.
    #[must_use]
    pub fn within(mut self, parent: &str) -> Self {
        self.field = if self.field.is_empty() { parent.to_owned() } else { format!("{parent}.{}", self.field) };
        self
    }
}

/// Sex as encoded in the 17th character of an identity number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sex {
    Male,
    Female,
}

/// An 18-character resident identity number, valid under GB 11643-1999
/// (R-ROSTER-3): known province code, a real birth date, and the ISO 7064
/// MOD 11-2 check character.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdentityNumber(String);

// Province-level codes of GB/T 2260 (the first two digits of a region code).
const PROVINCE_CODES: [u8; 34] = [
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54, 61, 62, 63,
    64, 65, 71, 81, 82,
];
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK_CHARS: [u8; 11] = *b"10X98765432";

/// The GB 11643 check character of the first 17 characters of an identity
/// number (digits only; anything else yields a character that fails `parse`).
pub fn check_character(body: &str) -> char {
    let sum: u32 = body.bytes().zip(WEIGHTS).map(|(d, w)| u32::from(d.wrapping_sub(b'0')) * w).sum();
    CHECK_CHARS[(sum % 11) as usize] as char
}

impl IdentityNumber {
    /// Validates `raw` (surrounding spaces ignored, a lower-case `x` accepted).
    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        let s = raw.trim().to_ascii_uppercase();
        let err = |reason: &str| InvalidField::new("", reason);
        if s.is_empty() {
            return Err(err("身份证号码不能为空"));
        }
        if s.len() != 18 {
            return Err(err(&format!("身份证号码应为18位，实际为{}位", s.chars().count())));
        }
        let b = s.as_bytes();
        if !b[..17].iter().all(u8::is_ascii_digit) || !(b[17].is_ascii_digit() || b[17] == b'X') {
            return Err(err("身份证号码前17位应为数字，最后一位应为数字或X"));
        }
        let province = (b[0] - b'0') * 10 + (b[1] - b'0');
        if !PROVINCE_CODES.contains(&province) {
            return Err(err(&format!("身份证号码的地址码开头“{province:02}”不是有效的省级行政区划代码")));
        }
        let Some(born) = birth_date(b) else {
            return Err(err(&format!("身份证号码中的出生日期“{}”不是有效日期", &s[6..14])));
        };
        // No one is born after today (in China): a mistyped year is caught here.
        let today = time::OffsetDateTime::now_utc().to_offset(time::macros::offset!(+8)).date();
        if born > today {
            return Err(err(&format!("身份证号码中的出生日期“{}”晚于今天，请核对号码是否抄错", &s[6..14])));
        }
        let expected = check_character(&s[..17]) as u8;
        if b[17] != expected {
            return Err(err(&format!(
                "身份证号码校验位错误：应为“{}”，实际为“{}”，请核对号码是否抄错",
                expected as char, b[17] as char
            )));
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Six-digit region code of the place of first registration.
    pub fn region_code(&self) -> &str {
        &self.0[..6]
    }

    pub fn birth_date(&self) -> Date {
        // Validated in `parse`; an IdentityNumber is only built there.
        birth_date(self.0.as_bytes()).unwrap_or(Date::MIN)
    }

    pub fn sex(&self) -> Sex {
        if (self.0.as_bytes()[16] - b'0') % 2 == 1 { Sex::Male } else { Sex::Female }
    }

    /// Full years of age on `on`.
    pub fn age_on(&self, on: Date) -> i32 {
        let born = self.birth_date();
        let mut age = on.year() - born.year();
        if (on.month() as u8, on.day()) < (born.month() as u8, born.day()) {
            age -= 1;
        }
        age
    }

    /// The number with the birth date and sequence masked, for public
    /// notices and exports (R-PROC-3): `110105********002X` keeps region and
    /// the last four characters.
    pub fn masked(&self) -> String {
        format!("{}********{}", &self.0[..6], &self.0[14..])
    }
}

/// An identity number as stored text, masked as [`IdentityNumber::masked`]
/// (anything that is not one entirely hidden).
pub fn masked_identity(v: &str) -> String {
    IdentityNumber::parse(v).map(|i| i.masked()).unwrap_or_else(|_| "******".to_owned())
}

/// A bank account or card number as readers who do not pay it see it:
/// its last four digits (`************1234`).
pub fn masked_account(v: &str) -> String {
    let keep = v.len().saturating_sub(4);
    match v.get(keep..) {
        Some(tail) if v.is_ascii() => format!("{}{tail}", "*".repeat(keep)),
        _ => "****".to_owned(),
    }
}

fn birth_date(b: &[u8]) -> Option<Date> {
    let num = |r: std::ops::Range<usize>| b[r].iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    let year = i32::try_from(num(6..10)).ok()?;
    let month = Month::try_from(u8::try_from(num(10..12)).ok()?).ok()?;
    let day = u8::try_from(num(12..14)).ok()?;
    if year < 1900 {
        return None;
    }
    Date::from_calendar_date(year, month, day).ok()
}

impl fmt::Display for IdentityNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// Debug masks the number so that logs never carry a full identity number.
impl fmt::Debug for IdentityNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdentityNumber({})", self.masked())
    }
}

impl TryFrom<&pb::IdentityNumber> for IdentityNumber {
    type Error = InvalidField;
    fn try_from(v: &pb::IdentityNumber) -> Result<Self, InvalidField> {
        Self::parse(&v.value)
    }
}

impl From<&IdentityNumber> for pb::IdentityNumber {
    fn from(v: &IdentityNumber) -> Self {
        Self { value: v.0.clone() }
    }
}

impl From<&DivisionCode> for pb::DivisionCode {
    fn from(v: &DivisionCode) -> Self {
        Self { code: v.0.clone() }
    }
}

/// Level of an administrative division.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DivisionLevel {
    Province,
    City,
    County,
    Township,
    Village,
}

/// A division code: 6 digits (province, city or county by its trailing
/// zeros), 9 digits (township) or 12 digits (village).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DivisionCode(String);

impl DivisionCode {
    pub fn parse(raw: &str) -> Result<Self, InvalidField> {
        let s = raw.trim();
        let err = |reason: String| InvalidField::new("", reason);
        if !matches!(s.len(), 6 | 9 | 12) || !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(err(format!("行政区划代码“{s}”应为6位（省、市、县）、9位（乡镇）或12位（村）数字")));
        }
        crate::divisions::check(s).map_err(err)?;
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its name in the division tables (R-ROSTER-3), where they have it.
    pub fn name(&self) -> Option<String> {
        crate::divisions::name(&self.0)
    }

    /// The names from the county down, as a notice prints the place
    /// (`梅河口市红梅镇联盟村`); the code itself where no table names a level.
    pub fn place(&self) -> String {
        [6, 9, 12]
            .into_iter()
            .filter(|len| *len <= self.0.len())
            .map(|len| crate::divisions::name(&self.0[..len]).unwrap_or_else(|| self.0[..len].to_owned()))
            .collect()
    }

    pub fn level(&self) -> DivisionLevel {
        match self.0.len() {
            12 => DivisionLevel::Village,
            9 => DivisionLevel::Township,
            _ if &self.0[2..] == "0000" => DivisionLevel::Province,
            _ if &self.0[4..] == "00" => DivisionLevel::City,
            _ => DivisionLevel::County,
        }
    }

    /// True when `other` lies inside this division (or is it).
    pub fn contains(&self, other: &DivisionCode) -> bool {
        other.0.starts_with(self.prefix())
    }

    /// The leading digits every code inside this division starts with
    /// (`22` for a province, `2205` for a city, the whole code below).
    pub fn prefix(&self) -> &str {
        match self.level() {
            DivisionLevel::Province => &self.0[..2],
            DivisionLevel::City => &self.0[..4],
            _ => &self.0,
        }
    }

    /// The six-digit county code of a county, township or village.
    pub fn county(&self) -> Option<DivisionCode> {
        (self.level() >= DivisionLevel::County).then(|| DivisionCode(self.0[..6].to_owned()))
    }
}

impl fmt::Display for DivisionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<&pb::DivisionCode> for DivisionCode {
    type Error = InvalidField;
    fn try_from(v: &pb::DivisionCode) -> Result<Self, InvalidField> {
        Self::parse(&v.code)
    }
}

/// Money in fen (1 yuan = 100 fen). Never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Fen(pub i64);

impl Fen {
    /// Refuses negative amounts, which no contract field allows.
    pub fn non_negative(v: &pb::Money) -> Result<Self, InvalidField> {
        if v.fen < 0 {
            return Err(InvalidField::new("fen", format!("金额不能为负数（{}分）", v.fen)));
        }
        Ok(Self(v.fen))
    }
}

impl Fen {
    /// Parses yuan as written in a roster or a form: `565`, `565.5`, `565.50`,
    /// optionally with `元`; exact, no floating point, at most two decimals.
    pub fn parse_yuan(raw: &str) -> Result<Self, InvalidField> {
        let s = raw.trim().trim_end_matches('元').trim();
        let bad = || InvalidField::new("", format!("金额“{raw}”应为以元为单位、最多两位小数的非负数，如565.50"));
        let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
        if whole.is_empty() || frac.len() > 2 || !whole.bytes().chain(frac.bytes()).all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        let yuan: i64 = whole.parse().map_err(|_| bad())?;
        let fen: i64 = format!("{frac:0<2}").parse().map_err(|_| bad())?;
        yuan.checked_mul(100).and_then(|y| y.checked_add(fen)).map(Self).ok_or_else(bad)
    }
}

impl fmt::Display for Fen {
    /// Yuan with two decimals, e.g. `1234.50元`, computed in integers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}元", abs / 100, abs % 100)
    }
}

impl From<Fen> for pb::Money {
    fn from(v: Fen) -> Self {
        Self { fen: v.0 }
    }
}

impl TryFrom<&pb::Date> for Date {
    type Error = InvalidField;
    fn try_from(v: &pb::Date) -> Result<Self, InvalidField> {
        let bad = || InvalidField::new("", format!("日期{}-{:02}-{:02}无效", v.year, v.month, v.day));
        let month = u8::try_from(v.month).ok().and_then(|m| Month::try_from(m).ok()).ok_or_else(bad)?;
        let day = u8::try_from(v.day).map_err(|_| bad())?;
        Date::from_calendar_date(v.year, month, day).map_err(|_| bad())
    }
}

/// Wire form of a date.
pub fn date_to_pb(d: Date) -> pb::Date {
    pb::Date { year: d.year(), month: i32::from(d.month() as u8), day: i32::from(d.day()) }
}

/// A step's signature (R-PROC-2): the verified officer, the role they
/// signed in, their division, when.
pub struct Signature {
    pub officer_id: String,
    pub officer_name: String,
    pub role: pb::OfficerRole,
    pub division: DivisionCode,
    pub signed_at: time::OffsetDateTime,
}

/// A relation to the head as rosters write it (户主, 配偶, 长子, 儿媳, …).
pub fn relation_from_zh(s: &str) -> Option<pb::Relation> {
    use pb::Relation as R;
    Some(match s {
        "户主" | "本人" => R::Head,
        "配偶" | "妻" | "夫" | "妻子" | "丈夫" => R::Spouse,
        "子女" | "子" | "女" | "儿子" | "女儿" | "长子" | "长女" | "次子" | "次女" => R::Child,
        "父母" | "父亲" | "母亲" | "父" | "母" => R::Parent,
        "孙子女" | "孙子" | "孙女" | "外孙子" | "外孙女" => R::Grandchild,
        "祖父母" | "祖父" | "祖母" | "外祖父" | "外祖母" => R::Grandparent,
        "兄弟姐妹" | "兄" | "弟" | "姐" | "妹" => R::Sibling,
        "儿媳" | "女婿" => R::ChildInLaw,
        "其他" => R::Other,
        _ => return None,
    })
}

/// Reads a required message field, naming it when absent.
pub fn required<'a, T>(v: &'a Option<T>, field: &str) -> Result<&'a T, InvalidField> {
    v.as_ref().ok_or_else(|| InvalidField::new(field, "必填项缺失"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn yuan_parse_exactly_to_fen() {
        assert_eq!(Fen::parse_yuan("565").expect("whole"), Fen(56_500));
        assert_eq!(Fen::parse_yuan(" 565.5元").expect("one decimal"), Fen(56_550));
        assert_eq!(Fen::parse_yuan("0.07").expect("fen"), Fen(7));
        for bad in ["", "-1", "5.555", "1e3", "五百", ".5", "1,000"] {
            assert!(Fen::parse_yuan(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn accepts_the_standard_example_and_derives_birth_and_sex() {
        // The worked example printed in GB 11643-1999 itself.
        let id = IdentityNumber::parse("11010519491231002x").expect("valid");
        assert_eq!(id.as_str(), "11010519491231002X");
        assert_eq!(id.birth_date(), date!(1949 - 12 - 31));
        assert_eq!(id.sex(), Sex::Female);
        assert_eq!(id.region_code(), "110105");
        assert_eq!(id.age_on(date!(2026 - 12 - 30)), 76);
        assert_eq!(id.age_on(date!(2026 - 12 - 31)), 77);
        assert_eq!(id.masked(), "110105********002X");
        assert_eq!(format!("{id:?}"), "IdentityNumber(110105********002X)");
    }

    #[test]
    fn accepts_male_with_digit_check() {
        // Weighted sum of the first 17 digits is 196; 196 % 11 = 9, whose check character is '3'.
        let id = IdentityNumber::parse("440524198001010013").expect("valid");
        assert_eq!(id.sex(), Sex::Male);
    }

    #[test]
    fn refuses_a_birth_date_after_today() {
        // Born on 2099-01-01, check character computed: valid but for the date.
        let body = "11010520990101002";
        let number = format!("{body}{}", check_character(body));
        let e = IdentityNumber::parse(&number).expect_err("born in the future");
        assert!(e.reason.contains("晚于今天"), "{}", e.reason);
    }

    #[test]
    fn refuses_a_wrong_check_character_naming_the_right_one() {
        let e = IdentityNumber::parse("110105194912310021").expect_err("bad check");
        assert!(e.reason.contains("应为“X”"), "{}", e.reason);
    }

    #[test]
    fn refuses_bad_length_province_and_date() {
        assert!(IdentityNumber::parse("1101051949123100").expect_err("len").reason.contains("18位"));
        assert!(IdentityNumber::parse("99010519491231002X").expect_err("prov").reason.contains("地址码"));
        assert!(IdentityNumber::parse("110105194902300025").expect_err("date").reason.contains("19490230"));
        assert!(IdentityNumber::parse("").expect_err("empty").reason.contains("不能为空"));
        assert!(IdentityNumber::parse("11010519491231002Y").expect_err("char").reason.contains("数字或X"));
    }

    #[test]
    fn division_codes_know_their_level_and_containment() {
        let county = DivisionCode::parse("110105").expect("county");
        let village = DivisionCode::parse("110105001002").expect("village");
        let province = DivisionCode::parse("110000").expect("province");
        assert_eq!(county.level(), DivisionLevel::County);
        assert_eq!(village.level(), DivisionLevel::Village);
        assert_eq!(province.level(), DivisionLevel::Province);
        assert!(county.contains(&village));
        assert!(province.contains(&village));
        assert!(!village.contains(&county));
        assert_eq!(village.county(), Some(county));
        assert!(DivisionCode::parse("11010").is_err());
        assert!(DivisionCode::parse("990105").is_err());
        // R-ROSTER-3: a well-formed code that is no county is refused.
        assert!(DivisionCode::parse("229999").expect_err("unknown").reason.contains("GB/T 2260"));
        assert_eq!(DivisionCode::parse("220581").expect("county").place(), "梅河口市");
    }

    #[test]
    fn fen_prints_yuan_exactly() {
        assert_eq!(Fen(123_450).to_string(), "1234.50元");
        assert_eq!(Fen(-5).to_string(), "-0.05元");
        assert!(Fen::non_negative(&pb::Money { fen: -1 }).is_err());
    }

    #[test]
    fn wire_dates_are_checked() {
        assert_eq!(Date::try_from(&pb::Date { year: 2024, month: 2, day: 29 }), Ok(date!(2024 - 02 - 29)));
        assert!(Date::try_from(&pb::Date { year: 2023, month: 2, day: 29 }).is_err());
        assert!(Date::try_from(&pb::Date { year: 2023, month: 13, day: 1 }).is_err());
    }
}
