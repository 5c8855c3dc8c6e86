//! The AudioStorm reviews service: ratings and reviews of songs (the "Atelier" Ratings & Reviews
//! API, songs in place of products), the importer of the legacy CSV dataset and its generator.

pub mod config;
pub mod error;
pub mod generate;
pub mod import;
pub mod openapi;
pub mod routes;
pub mod startup;
pub mod store;
