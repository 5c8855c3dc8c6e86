use super::Invalid;

/// 3–30 characters of `a-z 0-9 _ -`. Input is lower-cased first, so usernames are unique
/// regardless of case and `Alice` signs in as `alice`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let name = raw.trim().to_lowercase();
        let len = name.chars().count();
        if !(3..=30).contains(&len) {
            return Err(Invalid::new(
                "username",
                "invalid_username",
                "a username has 3 to 30 characters",
            ));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        {
            return Err(Invalid::new(
                "username",
                "invalid_username",
                "a username may contain only a-z, 0-9, _ and -",
            ));
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_name_is_accepted() {
        assert_eq!(
            Username::parse("dj_kool-99").unwrap().as_str(),
            "dj_kool-99"
        );
    }

    #[test]
    fn upper_case_is_folded() {
        assert_eq!(Username::parse("Alice").unwrap().as_str(), "alice");
    }

    #[test]
    fn two_characters_are_too_few_and_thirty_one_too_many() {
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse(&"a".repeat(30)).is_ok());
        assert!(Username::parse(&"a".repeat(31)).is_err());
    }

    #[test]
    fn spaces_dots_and_non_ascii_are_rejected() {
        for bad in ["a b c", "a.bc", "émile", "abc!", "ab\u{0}c"] {
            assert!(Username::parse(bad).is_err(), "{bad}");
        }
    }
}
