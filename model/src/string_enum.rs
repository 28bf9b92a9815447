//! The one way model enums that travel as text are written: the database
//! stores them, forms and URLs carry them, and serde, `Display` and
//! `FromStr` must all agree on the same words.

use std::fmt;

/// A string that names no variant of one of the model's enums.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownVariant {
    pub what: &'static str,
    pub value: String,
}

impl UnknownVariant {
    pub(crate) fn new(what: &'static str, value: &str) -> Self {
        UnknownVariant {
            what,
            value: value.to_string(),
        }
    }
}

impl fmt::Display for UnknownVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} {:?}", self.what, self.value)
    }
}

impl std::error::Error for UnknownVariant {}

/// Declares an enum whose variants are words: `ALL` (in declaration order),
/// `as_str`, `Display`, `FromStr` (refusing with [`UnknownVariant`] naming
/// `what`), and serde as the same words.
///
/// ```text
/// string_enum! {
///     /// One of the two slots of an environment.
///     pub enum SlotColor("slot colour") { Blue = "blue", Green = "green" }
/// }
/// ```
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant ),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: [$name; [$(stringify!($variant)),+].len()] = [$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text ),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::UnknownVariant;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::ALL
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| $crate::UnknownVariant::new($what, s))
            }
        }
    };
}

pub(crate) use string_enum;
