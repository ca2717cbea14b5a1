//! The REST API under `/api/v1/`, authenticated with API keys.
