use secrecy::{ExposeSecret, SecretString};

use super::Invalid;

/// A new password: at least 10 characters (NIST SP 800-63B / OWASP minimum for user-chosen
/// secrets), at most 256 so hashing cost stays bounded.
#[derive(Debug)]
pub struct Password(SecretString);

impl Password {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let len = raw.chars().count();
        if len < 10 {
            return Err(Invalid::new(
                "password",
                "password_too_short",
                "a password has at least 10 characters",
            ));
        }
        if len > 256 {
            return Err(Invalid::new(
                "password",
                "password_too_long",
                "a password has at most 256 characters",
            ));
        }
        Ok(Self(SecretString::from(raw.to_owned())))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nine_characters_are_too_few() {
        assert_eq!(
            Password::parse("123456789").unwrap_err().code,
            "password_too_short"
        );
        assert!(Password::parse("1234567890").is_ok());
    }

    #[test]
    fn characters_not_bytes_are_counted() {
        assert!(Password::parse("ééééé").is_err());
        assert!(Password::parse("éééééééééé").is_ok());
    }
}
