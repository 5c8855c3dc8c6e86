//! The routing table: path patterns → upstream pools, from configuration.
//!
//! A pattern is a path prefix matched segment by segment: `/users` matches `/users`, `/users/` and
//! `/users/7/followers`, never `/usersx`; a `*` segment matches any one non-empty segment
//! (`/users/*/songs`). When several patterns match, the one with the most segments wins, then the
//! one with more literal segments — so `/users/*/songs` goes to the player while the rest of
//! `/users` goes to the user service, whatever the order in the file.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::balancer::Pool;
use crate::config::List;
use crate::metrics::{Metrics, RouteMetrics};

/// Path prefixes the proxy answers itself; no route may start with them.
pub const RESERVED: [&str; 3] = ["health", "metrics", "api"];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Any,
}

/// One entry of the table.
pub struct Route {
    /// The pattern as configured; also the `route` label of the metrics.
    pub pattern: String,
    segments: Vec<Segment>,
    pub pool: Arc<Pool>,
    pub metrics: RouteMetrics,
}

/// Segments a pattern may have at most.
const MAX_SEGMENTS: usize = 16;

impl Route {
    /// Whether the pattern matches a path's first segments (`parts`, the path split once).
    fn matches(&self, parts: &[&[u8]]) -> bool {
        self.segments.len() <= parts.len()
            && self
                .segments
                .iter()
                .zip(parts)
                .all(|(segment, part)| match segment {
                    Segment::Literal(lit) => lit.as_bytes() == *part,
                    Segment::Any => !part.is_empty(),
                })
    }

    fn literals(&self) -> usize {
        self.segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count()
    }
}

/// The routing table, most specific pattern first.
pub struct RoutingTable {
    routes: Vec<Route>,
}

impl RoutingTable {
    /// Builds the table from `routes` (pool name → patterns); every pool must be in `pools`.
    pub fn new(
        routes: &BTreeMap<String, List>,
        pools: &BTreeMap<String, Arc<Pool>>,
        metrics: &Metrics,
    ) -> Result<Self, String> {
        let mut table: Vec<Route> = Vec::new();
        for (pool_name, patterns) in routes {
            let pool = pools
                .get(pool_name)
                .ok_or_else(|| format!("routes.{pool_name}: no pool named `{pool_name}`"))?;
            for pattern in &patterns.0 {
                let segments = parse(pattern).map_err(|e| format!("routes.{pool_name}: {e}"))?;
                if let Some(other) = table.iter().find(|r| r.segments == segments) {
                    return Err(format!(
                        "routes.{pool_name}: `{pattern}` is already routed to pool `{}`",
                        other.pool.name
                    ));
                }
                table.push(Route {
                    pattern: pattern.clone(),
                    segments,
                    pool: pool.clone(),
                    metrics: metrics.route(pattern),
                });
            }
        }
        table.sort_by(|a, b| {
            (b.segments.len(), b.literals()).cmp(&(a.segments.len(), a.literals()))
        });
        Ok(Self { routes: table })
    }

    /// The most specific route matching `path`, if any. The path is split once, not per route.
    pub fn lookup(&self, path: &str) -> Option<&Route> {
        let mut parts = [&b""[..]; MAX_SEGMENTS];
        let mut n = 0;
        // By bytes: `/` is ASCII, and a `str` pattern search costs more than these few bytes.
        let rest = path.as_bytes().strip_prefix(b"/").unwrap_or_default();
        for (slot, part) in parts.iter_mut().zip(rest.split(|&b| b == b'/')) {
            *slot = part;
            n += 1;
        }
        let parts = &parts[..n];
        self.routes.iter().find(|r| r.matches(parts))
    }
}

fn parse(pattern: &str) -> Result<Vec<Segment>, String> {
    let Some(rest) = pattern.strip_prefix('/') else {
        return Err(format!("`{pattern}` must start with `/`"));
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Err(format!(
            "`{pattern}` would route every path; name at least one segment"
        ));
    }
    let segments: Vec<Segment> = rest
        .split('/')
        .map(|s| match s {
            "*" => Ok(Segment::Any),
            "" => Err(format!("`{pattern}` has an empty segment")),
            s if s.contains('*') => Err(format!(
                "`{pattern}`: `*` stands alone for one whole segment"
            )),
            s => Ok(Segment::Literal(s.to_owned())),
        })
        .collect::<Result<_, _>>()?;
    if segments.len() > MAX_SEGMENTS {
        return Err(format!("`{pattern}` has more than {MAX_SEGMENTS} segments"));
    }
    match segments.first() {
        Some(Segment::Literal(first)) if RESERVED.contains(&first.as_str()) => Err(format!(
            "`{pattern}`: `/{first}` is answered by the proxy itself"
        )),
        Some(Segment::Any) => Err(format!("`{pattern}` must start with a literal segment")),
        _ => Ok(segments),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(routes: &[(&str, &[&str])]) -> RoutingTable {
        let metrics = Metrics::new().unwrap();
        let mut pools = BTreeMap::new();
        let mut map = BTreeMap::new();
        for (pool, patterns) in routes {
            pools.insert(
                pool.to_string(),
                Arc::new(Pool::new(pool, &["127.0.0.1:1".to_owned()], &metrics).unwrap()),
            );
            map.insert(
                pool.to_string(),
                List(patterns.iter().map(|p| p.to_string()).collect()),
            );
        }
        RoutingTable::new(&map, &pools, &metrics).unwrap()
    }

    fn pool_of<'a>(t: &'a RoutingTable, path: &str) -> Option<&'a str> {
        t.lookup(path).map(|r| r.pool.name.as_str())
    }

    fn default_table() -> RoutingTable {
        table(&[
            ("user", &["/auth", "/users", "/.well-known/jwks.json"]),
            ("player", &["/songs", "/users/*/songs", "/users/*/likes"]),
            ("reviews", &["/reviews"]),
        ])
    }

    #[test]
    fn a_prefix_matches_whole_segments_only() {
        let t = default_table();
        assert_eq!(pool_of(&t, "/songs"), Some("player"));
        assert_eq!(pool_of(&t, "/songs/"), Some("player"));
        assert_eq!(pool_of(&t, "/songs/12/stream"), Some("player"));
        assert_eq!(pool_of(&t, "/songsx"), None);
        assert_eq!(pool_of(&t, "/"), None);
    }

    #[test]
    fn the_more_specific_pattern_wins_whatever_the_order() {
        let t = default_table();
        assert_eq!(pool_of(&t, "/users/7"), Some("user"));
        assert_eq!(pool_of(&t, "/users/7/followers"), Some("user"));
        assert_eq!(pool_of(&t, "/users/7/songs"), Some("player"));
        assert_eq!(pool_of(&t, "/users/7/likes"), Some("player"));
        assert_eq!(pool_of(&t, "/users//songs"), Some("user"));
    }

    #[test]
    fn an_exact_file_path_routes() {
        let t = default_table();
        assert_eq!(pool_of(&t, "/.well-known/jwks.json"), Some("user"));
        assert_eq!(pool_of(&t, "/.well-known/other"), None);
    }

    #[test]
    fn reserved_and_catch_all_patterns_are_rejected() {
        assert!(parse("/metrics").is_err());
        assert!(parse("/health/x").is_err());
        assert!(parse("/").is_err());
        assert!(parse("songs").is_err());
        assert!(parse("/*/x").is_err());
        assert!(parse("/so*").is_err());
        assert_eq!(parse("/songs/").unwrap().len(), 1);
    }
}
