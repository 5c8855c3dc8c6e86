//! Extractors whose failures answer in the shared error shape, naming the offending field.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{FromRequest, HttpRequest, web};
use serde::de::DeserializeOwned;

use crate::error::HttpError;

/// A JSON request body. Unlike `actix_web::web::Json`, a bad body is answered with the shared error
/// shape and the offending field: `{"code":"invalid_field","field":"email",…}`.
///
/// The size limit is the app's `web::PayloadConfig` (413 `payload_too_large` beyond it).
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, HttpError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                let essence = v
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                essence == "application/json" || essence.ends_with("+json")
            })
            .unwrap_or(false);
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if !is_json {
                return Err(HttpError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "the body must be JSON (Content-Type: application/json)",
                ));
            }
            let bytes = body.await.map_err(|e| {
                if e.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
                    HttpError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        "the request body is too large",
                    )
                } else {
                    HttpError::bad_request("invalid_body", format!("could not read the body: {e}"))
                }
            })?;
            parse_json(&bytes).map(Json)
        })
    }
}

/// Deserialises JSON, describing a failure in the shared error shape with the field's path.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, HttpError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize::<_, T>(&mut de).map_err(describe)?;
    de.end()
        .map_err(|e| HttpError::bad_request("malformed_json", format!("malformed JSON: {e}")))?;
    Ok(value)
}

fn describe(err: serde_path_to_error::Error<serde_json::Error>) -> HttpError {
    let path = err.path().to_string();
    let inner = err.inner();
    if inner.is_syntax() || inner.is_eof() {
        return HttpError::bad_request("malformed_json", format!("malformed JSON: {inner}"));
    }
    let message = inner.to_string();
    // serde names missing and unknown fields in backticks; the path is their parent.
    let named = message.split('`').nth(1).map(str::to_owned);
    let join = |name: &str| {
        if path == "." || path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        }
    };
    let strip_position = |m: &str| match m.find(" at line ") {
        Some(i) => m[..i].to_owned(),
        None => m.to_owned(),
    };
    if message.starts_with("missing field") {
        let field = join(named.as_deref().unwrap_or(""));
        HttpError::bad_request("missing_field", format!("`{field}` is required")).field(field)
    } else if message.starts_with("unknown field") {
        // Here the path already ends at the unknown field.
        let field = if path == "." {
            named.unwrap_or_default()
        } else {
            path.clone()
        };
        HttpError::bad_request("unknown_field", format!("`{field}` is not a known field"))
            .field(field)
    } else {
        let field = if path == "." {
            None
        } else {
            Some(path.clone())
        };
        let e = HttpError::bad_request("invalid_field", strip_position(&message));
        match field {
            Some(f) => e.field(f),
            None => e,
        }
    }
}

/// Query-string failures in the shared shape.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        HttpError::bad_request("invalid_query", format!("invalid query string: {err}")).into()
    })
}

/// Path-segment failures (e.g. a non-numeric id) in the shared shape.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, _req| {
        HttpError::bad_request("invalid_path", format!("invalid path parameter: {err}")).into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        age: u32,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        x: i64,
    }

    fn err(s: &str) -> HttpError {
        parse_json::<Body>(s.as_bytes()).unwrap_err()
    }

    #[test]
    fn a_missing_field_is_named() {
        let e = err(r#"{"name":"a"}"#);
        assert_eq!(e.body.code, "missing_field");
        assert_eq!(e.body.field.as_deref(), Some("age"));
    }

    #[test]
    fn a_wrong_type_is_named_with_its_path() {
        let e = err(r#"{"name":"a","age":1,"inner":{"x":"no"}}"#);
        assert_eq!(e.body.code, "invalid_field");
        assert_eq!(e.body.field.as_deref(), Some("inner.x"));
    }

    #[test]
    fn an_unknown_field_is_named() {
        let e = err(r#"{"name":"a","age":1,"admin":true}"#);
        assert_eq!(e.body.code, "unknown_field");
        assert_eq!(e.body.field.as_deref(), Some("admin"));
    }

    #[test]
    fn broken_json_is_malformed() {
        assert_eq!(err(r#"{"name":"#).body.code, "malformed_json");
        assert_eq!(
            err(r#"{"name":"a","age":1} trailing"#).body.code,
            "malformed_json"
        );
        assert_eq!(err("").body.code, "malformed_json");
    }
}
