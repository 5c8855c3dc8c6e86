//! Integration tests of the player service: the real app on port 0 over a fresh embedded CQL
//! engine (through the scylla driver) and real Redis with its own key prefix, per test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audio;
mod helpers;
mod likes;
mod songs;
