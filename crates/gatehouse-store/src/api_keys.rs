//! API keys for the REST API.
