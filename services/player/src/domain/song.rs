use serde::{Deserialize, Serialize};

use super::Invalid;

fn bounded_text(
    raw: &str,
    field: &'static str,
    code: &'static str,
    min: usize,
    max: usize,
    newlines: bool,
) -> Result<String, Invalid> {
    let text = raw.trim();
    let len = text.chars().count();
    if len < min || len > max {
        let range = if min == 0 {
            format!("at most {max}")
        } else {
            format!("{min} to {max}")
        };
        return Err(Invalid::new(
            field,
            code,
            format!("{field} has {range} characters"),
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && !(newlines && (c == '\n' || c == '\t')))
    {
        return Err(Invalid::new(
            field,
            code,
            format!("{field} may not contain control characters"),
        ));
    }
    Ok(text.to_owned())
}

/// 1–200 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Title(String);

impl Title {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        bounded_text(raw, "title", "invalid_title", 1, 200, false).map(Self)
    }
    pub fn into_inner(self) -> String {
        self.0
    }
}

/// At most 4,000 characters; newlines allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        bounded_text(raw, "description", "invalid_description", 0, 4000, true).map(Self)
    }
    pub fn into_inner(self) -> String {
        self.0
    }
}

/// At most 50 characters (empty = no genre).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Genre(String);

impl Genre {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        bounded_text(raw, "genre", "invalid_genre", 0, 50, false).map(Self)
    }
    pub fn into_inner(self) -> String {
        self.0
    }
}

/// At most 30 distinct tags of 1–50 characters each (compared regardless of case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagList(Vec<String>);

impl TagList {
    pub fn parse(raw: &[String]) -> Result<Self, Invalid> {
        let mut tags: Vec<String> = Vec::new();
        for tag in raw {
            let tag = bounded_text(tag, "tag_list", "invalid_tag_list", 1, 50, false)?;
            if !tags.iter().any(|t| t.eq_ignore_ascii_case(&tag)) {
                tags.push(tag);
            }
        }
        if tags.len() > 30 {
            return Err(Invalid::new(
                "tag_list",
                "invalid_tag_list",
                "a song has at most 30 tags",
            ));
        }
        Ok(Self(tags))
    }
    pub fn into_inner(self) -> Vec<String> {
        self.0
    }
}

/// Who may see a song.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Sharing {
    #[default]
    Public,
    Private,
}

impl Sharing {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Private => "private",
        }
    }

    /// From the stored text; anything unknown is treated as private (never leak).
    pub fn from_stored(s: &str) -> Self {
        if s == "public" {
            Self::Public
        } else {
            Self::Private
        }
    }
}

/// An absolute http(s) URL of at most 500 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtworkUrl(String);

impl ArtworkUrl {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let bad = |m: &str| Invalid::new("artwork_url", "invalid_artwork_url", m);
        let raw = raw.trim();
        if raw.len() > 500 {
            return Err(bad("an artwork URL has at most 500 characters"));
        }
        let ok = (raw.starts_with("https://") || raw.starts_with("http://"))
            && raw
                .split("://")
                .nth(1)
                .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
            && !raw.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok {
            return Err(bad("an artwork URL must be an http or https URL"));
        }
        Ok(Self(raw.to_owned()))
    }
    pub fn into_inner(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_title_is_trimmed_and_bounded() {
        assert_eq!(Title::parse("  Song  ").unwrap().into_inner(), "Song");
        assert!(Title::parse("   ").is_err());
        assert!(Title::parse(&"x".repeat(200)).is_ok());
        assert!(Title::parse(&"x".repeat(201)).is_err());
        assert!(Title::parse("a\nb").is_err());
    }

    #[test]
    fn tags_are_deduplicated_and_bounded() {
        let tags: Vec<String> = ["lofi", "LoFi", "chill"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            TagList::parse(&tags).unwrap().into_inner(),
            ["lofi", "chill"]
        );
        let many: Vec<String> = (0..31).map(|i| format!("t{i}")).collect();
        assert!(TagList::parse(&many).is_err());
        assert!(TagList::parse(&[String::new()]).is_err());
        assert!(TagList::parse(&["x".repeat(51)]).is_err());
    }

    #[test]
    fn a_genre_may_be_empty_but_not_long() {
        assert!(Genre::parse("").is_ok());
        assert!(Genre::parse(&"g".repeat(51)).is_err());
    }

    #[test]
    fn unknown_stored_sharing_is_private() {
        assert_eq!(Sharing::from_stored("public"), Sharing::Public);
        assert_eq!(Sharing::from_stored("garbage"), Sharing::Private);
    }

    #[test]
    fn artwork_must_be_http() {
        assert!(ArtworkUrl::parse("https://cdn.example.com/a.jpg").is_ok());
        assert!(ArtworkUrl::parse("javascript:alert(1)").is_err());
        assert!(ArtworkUrl::parse("https:///nohost").is_err());
    }
}
