//! The offline HTML report. Not implemented yet.
