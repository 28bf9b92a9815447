//! Typed reading of a server function's form fields. Forms post text; each
//! parser names the field it refuses (`AppError::InvalidInput`), so the form
//! and API clients can point at it, and says why in words people read.
//! Ranges and rules are the engine's to check.

use crate::error::AppError;
use std::str::FromStr;

/// How a refusal calls a field for people: its name without the unit,
/// in words ("health_interval_ms" → "health interval").
fn label(field: &str) -> String {
    let bare = ["_ms", "_pct", "_hours"]
        .iter()
        .find_map(|unit| field.strip_suffix(unit))
        .unwrap_or(field);
    bare.replace('_', " ")
}

/// A whole number.
pub fn whole_number<T: FromStr>(field: &'static str, raw: &str) -> Result<T, AppError> {
    raw.trim().parse().map_err(|_| {
        AppError::invalid(
            field,
            format!("{}: {raw:?} is not a whole number", label(field)),
        )
    })
}

/// A decimal number.
pub fn number(field: &'static str, raw: &str) -> Result<f64, AppError> {
    raw.trim()
        .parse()
        .map_err(|_| AppError::invalid(field, format!("{}: {raw:?} is not a number", label(field))))
}

/// A whole number that may be left empty.
pub fn optional_whole_number<T: FromStr>(
    field: &'static str,
    raw: Option<&str>,
) -> Result<Option<T>, AppError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => whole_number(field, v).map(Some),
    }
}

/// One of a word enum's values (a role, a check kind); anything else is
/// refused with the values it may be, never defaulted.
pub fn choice<T>(field: &'static str, raw: &str) -> Result<T, AppError>
where
    T: FromStr<Err = model::UnknownVariant>,
{
    raw.trim()
        .parse()
        .map_err(|e: model::UnknownVariant| AppError::invalid(field, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::Role;

    fn field_of(e: AppError) -> (String, String) {
        match e {
            AppError::InvalidInput { field, message } => (field, message),
            e => panic!("{e:?}"),
        }
    }

    #[test]
    fn numbers_name_their_field_when_refused() {
        assert_eq!(whole_number::<u64>("p95_ms", " 200 ").unwrap(), 200);
        let (f, m) = field_of(whole_number::<u32>("sample_requests", "fifty").unwrap_err());
        assert_eq!(f, "sample_requests");
        assert_eq!(m, r#"sample requests: "fifty" is not a whole number"#);
        let (_, m) = field_of(whole_number::<u64>("health_interval_ms", "1s").unwrap_err());
        assert_eq!(m, r#"health interval: "1s" is not a whole number"#);
        assert_eq!(number("max_error_pct", "0.5").unwrap(), 0.5);
        let (f, m) = field_of(number("max_error_pct", "½").unwrap_err());
        assert_eq!(f, "max_error_pct");
        assert_eq!(m, r#"max error: "½" is not a number"#);
    }

    #[test]
    fn an_empty_optional_number_is_none() {
        let hours = |raw| optional_whole_number::<i64>("max_age_hours", raw);
        assert_eq!(hours(None).unwrap(), None);
        assert_eq!(hours(Some("  ")).unwrap(), None);
        assert_eq!(hours(Some("24")).unwrap(), Some(24));
        assert_eq!(field_of(hours(Some("x")).unwrap_err()).0, "max_age_hours");
    }

    #[test]
    fn choices_refuse_unknown_words() {
        assert_eq!(choice::<Role>("role", "approver").unwrap(), Role::Approver);
        let (f, m) = field_of(choice::<Role>("role", "root").unwrap_err());
        assert_eq!(f, "role");
        assert!(m.contains("unknown role"), "{m}");
    }
}
