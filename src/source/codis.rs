//! Codis topology discovery through the dashboard. Not implemented yet.
