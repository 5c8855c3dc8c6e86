//! Validated input: every field a request carries is parsed into one of these types at the boundary.

mod email;
mod password;
mod profile;
mod username;

pub use email::Email;
pub use password::Password;
pub use profile::{AvatarUrl, Bio, DisplayName};
pub use username::Username;

/// A field failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    pub field: &'static str,
    pub code: &'static str,
    pub message: String,
}

impl Invalid {
    pub fn new(field: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            code,
            message: message.into(),
        }
    }
}

/// True when `s` holds a control character (newlines included).
fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}
