//! Wire types shared by the browser, the console server and switchyard-proxy,
//! one file per domain; everything is re-exported here (`model::SlotColor`).
//!
//! Everything here is plain data: it must compile to WASM, so no I/O and no
//! server-only crates. Timestamps travel as RFC 3339 strings for the same reason.
//! Enums that travel as words are declared with `string_enum!` (one way for
//! serde, `Display` and `FromStr` to agree).

mod audit;
mod deployment;
mod environment_config;
mod people;
mod release;
mod slot;
mod string_enum;
mod token;
mod traffic;
mod webhook;

pub use audit::*;
pub use deployment::*;
pub use environment_config::*;
pub use people::*;
pub use release::*;
pub use slot::*;
pub use string_enum::UnknownVariant;
pub use token::*;
pub use traffic::*;
pub use webhook::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_through_their_names() {
        for c in SlotColor::ALL {
            assert_eq!(c.as_str().parse::<SlotColor>().unwrap(), c);
            assert_ne!(c.other(), c);
        }
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        for s in StepStatus::ALL {
            assert_eq!(s.as_str().parse::<StepStatus>().unwrap(), s);
        }
        assert!("purple".parse::<SlotColor>().is_err());
        assert_eq!(
            "root".parse::<Role>().unwrap_err().to_string(),
            "unknown role \"root\""
        );
    }

    #[test]
    fn serde_writes_the_same_words_as_display() {
        for c in SlotColor::ALL {
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{c}\""));
        }
        for s in StepName::ALL {
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        for k in AutoCheck::ALL {
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{k}\""));
            assert_eq!(
                serde_json::from_str::<AutoCheck>(&format!("\"{k}\"")).unwrap(),
                k
            );
        }
    }
}
