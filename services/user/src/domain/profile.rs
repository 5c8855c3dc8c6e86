use super::{Invalid, has_control};

/// The name shown on a profile: 1–50 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let name = raw.trim();
        let len = name.chars().count();
        if len == 0 || len > 50 {
            return Err(Invalid::new(
                "display_name",
                "invalid_display_name",
                "a display name has 1 to 50 characters",
            ));
        }
        if has_control(name) {
            return Err(Invalid::new(
                "display_name",
                "invalid_display_name",
                "a display name may not contain control characters",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A profile's free text: at most 1,000 characters (newlines allowed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bio(String);

impl Bio {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let bio = raw.trim();
        if bio.chars().count() > 1000 {
            return Err(Invalid::new(
                "bio",
                "invalid_bio",
                "a bio has at most 1000 characters",
            ));
        }
        if bio
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(Invalid::new(
                "bio",
                "invalid_bio",
                "a bio may not contain control characters",
            ));
        }
        Ok(Self(bio.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An absolute http(s) URL of at most 500 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvatarUrl(String);

impl AvatarUrl {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let bad = |m: &str| Invalid::new("avatar_url", "invalid_avatar_url", m);
        if raw.len() > 500 {
            return Err(bad("an avatar URL has at most 500 characters"));
        }
        let url = url::Url::parse(raw.trim()).map_err(|_| bad("that is not a valid URL"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(bad("an avatar URL must be an http or https URL"));
        }
        Ok(Self(url.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_display_name_is_trimmed_and_bounded() {
        assert_eq!(
            DisplayName::parse("  Ann Lee ").unwrap().as_str(),
            "Ann Lee"
        );
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse(&"x".repeat(51)).is_err());
        assert!(DisplayName::parse("a\nb").is_err());
    }

    #[test]
    fn a_bio_keeps_newlines_but_not_other_controls() {
        assert!(Bio::parse("line one\nline two").is_ok());
        assert!(Bio::parse("bell\u{7}").is_err());
        assert!(Bio::parse(&"x".repeat(1001)).is_err());
    }

    #[test]
    fn an_avatar_must_be_http() {
        assert!(AvatarUrl::parse("https://cdn.example.com/a.png").is_ok());
        assert!(AvatarUrl::parse("javascript:alert(1)").is_err());
        assert!(AvatarUrl::parse("ftp://example.com/a.png").is_err());
        assert!(AvatarUrl::parse("not a url").is_err());
    }
}
