//! One GraphQL request as every transport delivers it: the members of a GraphQL-over-HTTP request
//! object, a WebSocket `subscribe` payload, or a CLI argument.

use serde_json::{Map, Value};

/// The members of one GraphQL request (one member of a batch).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GraphqlRequest {
    pub query: Option<String>,
    pub operation_name: Option<String>,
    pub variables: Option<Map<String, Value>>,
    pub extensions: Option<Map<String, Value>>,
    pub document_id: Option<String>,
}

impl GraphqlRequest {
    /// `extensions.persistedQuery`, the Automatic Persisted Queries member.
    pub fn persisted_query(&self) -> Option<&Value> {
        self.extensions.as_ref()?.get("persistedQuery")
    }

    /// Carries a persisted-query id (`documentId` or `extensions.persistedQuery`).
    pub fn names_an_id(&self) -> bool {
        self.document_id.is_some() || self.persisted_query().is_some()
    }
}
