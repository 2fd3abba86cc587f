//! The offline report: what a stored batch says about where the memory goes.
//!
//! [`model::ReportData`] is the one data model; readers (Parquet files, ClickHouse) fill it and
//! one renderer turns it into a self-contained HTML page (and its JSON).

pub mod html;
pub mod model;
