//! The SCIM discovery endpoints (RFC 7644 §4): `ServiceProviderConfig`, `ResourceTypes` and `Schemas`, which
//! describe exactly what `/Users` serves — the User attributes a mailbox keeps, PATCH, `eq` filters and
//! ETags; no bulk operations, sorting, password changes or groups.

use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::{Value, json};

use super::error::{ScimError, scim_json};
use super::{LIST_SCHEMA, MAX_RESULTS, ScimState, USER_SCHEMA};

const SERVICE_PROVIDER_CONFIG_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// `GET /ServiceProviderConfig`.
pub async fn service_provider_config(State(state): State<ScimState>) -> Response {
    scim_json(&json!({
        "schemas": [SERVICE_PROVIDER_CONFIG_SCHEMA],
        "patch": { "supported": true },
        "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": 0 },
        "filter": { "supported": true, "maxResults": MAX_RESULTS },
        "changePassword": { "supported": false },
        "sort": { "supported": false },
        "etag": { "supported": true },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "A token made with `gatehouse scim-token add`, sent as Authorization: Bearer gs_…",
            "primary": true,
        }],
        "meta": { "resourceType": "ServiceProviderConfig", "location": state.location("/ServiceProviderConfig") },
    }))
}

fn user_resource_type(state: &ScimState) -> Value {
    json!({
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": "User",
        "name": "User",
        "endpoint": "/Users",
        "description": "A mailbox of the identity provider the token belongs to",
        "schema": USER_SCHEMA,
        "meta": { "resourceType": "ResourceType", "location": state.location("/ResourceTypes/User") },
    })
}

/// `GET /ResourceTypes`.
pub async fn resource_types(State(state): State<ScimState>) -> Response {
    scim_json(&list(vec![user_resource_type(&state)]))
}

/// `GET /ResourceTypes/{id}`.
pub async fn resource_type(State(state): State<ScimState>, Path(id): Path<String>) -> Result<Response, ScimError> {
    if id != "User" {
        return Err(ScimError::not_found(format!("no resource type '{id}' (only User)")));
    }
    Ok(scim_json(&user_resource_type(&state)))
}

/// A string attribute of the User schema.
fn string(name: &str, description: &str, required: bool, uniqueness: &str) -> Value {
    json!({
        "name": name, "type": "string", "multiValued": false, "description": description, "required": required,
        "caseExact": false, "mutability": "readWrite", "returned": "default", "uniqueness": uniqueness,
    })
}

fn user_schema(state: &ScimState) -> Value {
    let name_part = |name: &str, description: &str| string(name, description, false, "none");
    let email_part = |name: &str, description: &str| string(name, description, false, "none");
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": USER_SCHEMA,
        "name": "User",
        "description": "A mailbox: userName is its mail address (or, when userName is not one, the primary email)",
        "attributes": [
            string("userName", "The mail address of the mailbox, or another unique name when emails hold the \
                address; it cannot change", true, "server"),
            {
                "name": "name", "type": "complex", "multiValued": false, "description": "The person's name",
                "required": false, "mutability": "readWrite", "returned": "default", "uniqueness": "none",
                "subAttributes": [
                    name_part("formatted", "The full name"),
                    name_part("familyName", "The family name"),
                    name_part("givenName", "The given name"),
                    name_part("middleName", "The middle name"),
                    name_part("honorificPrefix", "A title before the name"),
                    name_part("honorificSuffix", "A suffix after the name"),
                ],
            },
            string("displayName", "The name shown for the mailbox", false, "none"),
            string("title", "The person's title (may select the mailbox template)", false, "none"),
            string("userType", "The kind of user (may select the mailbox template)", false, "none"),
            {
                "name": "active", "type": "boolean", "multiValued": false,
                "description": "Whether the mailbox may log in; false deactivates it (it is never deleted)",
                "required": true, "mutability": "readWrite", "returned": "default",
            },
            {
                "name": "emails", "type": "complex", "multiValued": true, "description": "Mail addresses",
                "required": false, "mutability": "readWrite", "returned": "default", "uniqueness": "none",
                "subAttributes": [
                    email_part("value", "The address"),
                    email_part("display", "How the address is shown"),
                    {
                        "name": "type", "type": "string", "multiValued": false, "description": "work, home, other",
                        "required": false, "caseExact": false, "canonicalValues": ["work", "home", "other"],
                        "mutability": "readWrite", "returned": "default", "uniqueness": "none",
                    },
                    {
                        "name": "primary", "type": "boolean", "multiValued": false,
                        "description": "The primary address", "required": false, "mutability": "readWrite",
                        "returned": "default",
                    },
                ],
            },
        ],
        "meta": { "resourceType": "Schema", "location": state.location(&format!("/Schemas/{USER_SCHEMA}")) },
    })
}

/// `GET /Schemas`.
pub async fn schemas(State(state): State<ScimState>) -> Response {
    scim_json(&list(vec![user_schema(&state)]))
}

/// `GET /Schemas/{id}`.
pub async fn schema(State(state): State<ScimState>, Path(id): Path<String>) -> Result<Response, ScimError> {
    if id != USER_SCHEMA {
        return Err(ScimError::not_found(format!("no schema '{id}' (only {USER_SCHEMA})")));
    }
    Ok(scim_json(&user_schema(&state)))
}

fn list(resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": resources.len(),
        "startIndex": 1,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}
