use super::Invalid;

/// A syntactically valid address of at most 254 characters, unique regardless of case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let email = raw.trim();
        let bad = || {
            Invalid::new(
                "email",
                "invalid_email",
                "that is not a valid email address",
            )
        };
        if email.len() > 254 || !email_address::EmailAddress::is_valid(email) {
            return Err(bad());
        }
        // The RFC allows quoted local parts and bare domains; a music site wants a deliverable address.
        let (local, domain) = email.rsplit_once('@').ok_or_else(bad)?;
        if local.starts_with('"') || !domain.contains('.') || domain.starts_with('[') {
            return Err(bad());
        }
        Ok(Self(email.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ordinary_address_is_accepted() {
        assert!(Email::parse("ann.lee+music@example.co.uk").is_ok());
    }

    #[test]
    fn addresses_without_at_or_domain_dot_are_rejected() {
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "ann@localhost",
            "a b@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_overlong_address_is_rejected() {
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
    }
}
