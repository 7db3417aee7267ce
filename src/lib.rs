//! lethe: copies a consistent snapshot of a production database into dev and
//! staging, streaming every row through per-column masking rules, so that no
//! real customer data ever leaves production.

pub mod audit;
pub mod catalog;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod engine;
pub mod mask;
pub mod pipeline;
pub mod plan;
pub mod report;
pub mod rows;
pub mod rules;
pub mod scan;
pub mod schedule;
pub mod subset;
pub mod verify;
