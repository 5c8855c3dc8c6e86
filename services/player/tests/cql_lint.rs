//! Lints every CQL statement in the player's source against the constructs that behave
//! differently on the embedded engine and on ScyllaDB (`../shared/notes/cql-portable-subset.md`).
//! A statement is any string literal starting with a CQL verb.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

const VERBS: &[&str] = &[
    "SELECT ",
    "INSERT ",
    "UPDATE ",
    "DELETE ",
    "CREATE ",
    "BEGIN BATCH",
    "USE ",
    "ALTER ",
    "DROP ",
    "TRUNCATE ",
];

/// Whole words (types and keywords), upper-cased, and why each is refused.
const FORBIDDEN_WORDS: &[(&str, &str)] = &[
    ("COUNTER", "counter columns crash kassandra"),
    ("TIMEUUID", "timeuuid values crash kassandra on bind"),
    ("SMALLINT", "smallint crashes kassandra on bind"),
    ("TINYINT", "tinyint crashes kassandra on bind"),
    ("VARINT", "varint crashes kassandra on bind"),
    ("DECIMAL", "decimal crashes kassandra on bind"),
    ("DURATION", "duration crashes kassandra on bind"),
    ("TUPLE", "tuples crash kassandra"),
    ("FROZEN", "frozen kills the kassandra process"),
    ("ALTER", "not supported by kassandra"),
    ("DROP", "not supported by kassandra"),
    (
        "USE",
        "USE switches the keyspace for every connection on kassandra",
    ),
    ("TOKEN", "token() is ignored or wrong on kassandra"),
    ("IN", "IN is ignored or wrong on kassandra"),
];

/// Phrases, upper-cased with single spaces, and why each is refused.
const FORBIDDEN: &[(&str, &str)] = &[
    ("CREATE TYPE", "user types crash kassandra"),
    ("USING TTL", "TTL is ignored by kassandra"),
    ("USING TIMESTAMP", "USING TIMESTAMP is ignored by kassandra"),
    (
        "ORDER BY",
        "ORDER BY is ignored by kassandra: use an ascending clustering key",
    ),
    (
        "CLUSTERING ORDER",
        "clustering order is ignored by kassandra",
    ),
    ("PER PARTITION LIMIT", "ignored by kassandra"),
    ("ALLOW FILTERING", "not supported by kassandra"),
    ("COUNT(", "not supported by kassandra"),
    ("CREATE INDEX", "not supported by kassandra"),
    ("MATERIALIZED VIEW", "not supported by kassandra"),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The contents of every string literal (plain and raw) in `src`.
fn string_literals(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = src.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'r' if bytes.get(i + 1) == Some(&b'#')
                || (bytes.get(i + 1) == Some(&b'"')
                    && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric())) =>
            {
                let hashes = bytes[i + 1..].iter().take_while(|b| **b == b'#').count();
                let start = i + 1 + hashes + 1;
                let end_pat = format!("\"{}", "#".repeat(hashes));
                if let Some(len) = src[start..].find(&end_pat) {
                    out.push(src[start..start + len].to_owned());
                    i = start + len + end_pat.len();
                } else {
                    i += 1;
                }
            }
            b'\'' => {
                // A char literal such as '"' must not open a string; lifetimes are skipped too.
                i += if bytes.get(i + 2) == Some(&b'\'') {
                    3
                } else if bytes.get(i + 1) == Some(&b'\\') {
                    4
                } else {
                    1
                };
            }
            b'"' => {
                let mut s = String::new();
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' && i + 1 < bytes.len() {
                        s.push(bytes[i + 1] as char);
                        i += 2;
                    } else {
                        s.push(bytes[i] as char);
                        i += 1;
                    }
                }
                out.push(s);
                i += 1;
            }
            _ => i += 1,
        }
    }
    out
}

fn problems(statement: &str) -> Vec<String> {
    let upper = format!(
        " {}",
        statement
            .to_uppercase()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    );
    let words: Vec<&str> = upper
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    let mut found: Vec<String> = FORBIDDEN_WORDS
        .iter()
        .filter(|(word, _)| words.contains(word))
        .map(|(word, why)| format!("`{word}`: {why}"))
        .collect();
    found.extend(
        FORBIDDEN
            .iter()
            .filter(|(pat, _)| upper.contains(pat))
            .map(|(pat, why)| format!("`{}`: {why}", pat.trim())),
    );
    // Keywords in lower case cut the WHERE short on kassandra.
    for kw in [
        " and ",
        " where ",
        " primary key",
        " if not exists",
        " with ",
    ] {
        if format!(" {statement}").contains(kw) {
            found.push(format!(
                "lower-case `{}`: keywords must be upper case",
                kw.trim()
            ));
        }
    }
    // Conditional DML is a lightweight transaction: a plain upsert on kassandra.
    let is_dml = ["INSERT", "UPDATE", "DELETE"]
        .iter()
        .any(|v| upper.trim_start().starts_with(v));
    if is_dml
        && (upper.contains(" IF NOT EXISTS")
            || upper.contains(" IF EXISTS")
            || upper.contains(" IF "))
    {
        found.push("conditional DML (LWT) is a plain upsert on kassandra".into());
    }
    // Tables must be qualified with a keyspace.
    for marker in [" FROM ", " INTO ", "UPDATE ", " TABLE IF NOT EXISTS "] {
        if let Some(pos) = upper.find(marker) {
            let name = upper[pos + marker.len()..]
                .split_whitespace()
                .next()
                .unwrap_or("");
            if !name.contains('.') {
                found.push(format!("table `{name}` is not qualified with a keyspace"));
            }
        }
    }
    found
}

fn statements_in_source() -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut out = Vec::new();
    for file in files {
        let src = std::fs::read_to_string(&file).unwrap();
        for lit in string_literals(&src) {
            let t = lit.trim_start().to_uppercase();
            if VERBS.iter().any(|v| t.starts_with(v)) {
                out.push((file.clone(), lit));
            }
        }
    }
    out
}

#[test]
fn every_cql_statement_in_the_code_is_portable() {
    let statements = statements_in_source();
    assert!(
        statements.len() >= 5,
        "found too few statements: {}",
        statements.len()
    );
    let mut report = Vec::new();
    for (file, stmt) in &statements {
        for p in problems(stmt) {
            report.push(format!(
                "{}: {p}\n    {}",
                file.display(),
                stmt.split_whitespace().collect::<Vec<_>>().join(" ")
            ));
        }
    }
    assert!(
        report.is_empty(),
        "non-portable CQL:\n{}",
        report.join("\n")
    );
}

#[test]
fn the_lint_catches_what_the_note_forbids() {
    for bad in [
        "CREATE TABLE IF NOT EXISTS ks.t (id bigint, n counter, PRIMARY KEY ((id)))",
        "SELECT * FROM ks.t WHERE a = ? ORDER BY b DESC",
        "INSERT INTO ks.t (a) VALUES (?) IF NOT EXISTS",
        "INSERT INTO ks.t (a) VALUES (?) USING TTL 60",
        "SELECT * FROM t WHERE a = ?",
        "SELECT * FROM ks.t WHERE a = ? and b = ?",
        "CREATE TABLE IF NOT EXISTS ks.t (id bigint, v frozen<list<text>>, PRIMARY KEY ((id)))",
        "SELECT * FROM ks.t WHERE a IN ?",
        "SELECT COUNT(*) FROM ks.t",
    ] {
        assert!(!problems(bad).is_empty(), "not caught: {bad}");
    }
    assert!(problems("SELECT a, b FROM ks.t WHERE a = ? AND b = ? LIMIT 10").is_empty());
}

#[test]
fn string_literals_are_found_in_plain_and_raw_strings() {
    let src = r####"let a = "SELECT 1"; let b = r#"INSERT "x""#; let c = '"'; // "not this"
    "####;
    let lits = string_literals(src);
    assert_eq!(lits, vec!["SELECT 1".to_owned(), "INSERT \"x\"".to_owned()]);
}
