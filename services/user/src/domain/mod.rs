//! Validated input: every field a request carries is parsed into one of these types at the boundary.

mod email;
mod password;
mod profile;
mod username;

pub use email::Email;
pub use password::Password;
pub use profile::{AvatarUrl, Bio, DisplayName};
pub use username::Username;

pub use shared::error::Invalid;

/// True when `s` holds a control character (newlines included).
fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}
