//! Enums that stay open: a value a newer server sends decodes to `Unknown` instead of failing the
//! whole answer, while the documented schema lists only the values this version knows.

/// Declares a snake_case string enum with an `Unknown` catch-all, `as_str`, `Display` and
/// `FromStr`.
///
/// ```
/// let status: linkloom_wire::ExecutionStatus = serde_json::from_str("\"hibernating\"")?;
/// assert_eq!(status, linkloom_wire::ExecutionStatus::Unknown);
/// assert_eq!(status.as_str(), "unknown");
/// # Ok::<(), serde_json::Error>(())
/// ```
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
        #[non_exhaustive]
        $vis enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant, )*
            /// A value this version does not know (sent by a newer server). Never sent.
            #[default]
            #[serde(other, rename = "unknown")]
            #[schemars(skip)]
            Unknown,
        }

        impl $name {
            /// Every value this version knows, in declaration order.
            pub const KNOWN: &'static [$name] = &[$($name::$variant),*];

            /// The name on the wire (`unknown` for [`Self::Unknown`]).
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )*
                    $name::Unknown => "unknown",
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::error::UnknownValue;

            /// Parses a known value; anything else is an error naming the values allowed.
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                $name::KNOWN.iter().copied().find(|v| v.as_str() == text).ok_or_else(|| $crate::error::UnknownValue {
                    what: stringify!($name),
                    value: text.to_string(),
                    allowed: $name::KNOWN.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", "),
                })
            }
        }
    };
}
