//! `gatehouse api-key add|list|revoke`: keys for the REST API.
