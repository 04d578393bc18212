//! APQ registrations shared by every replica (`STATE=redis` with `PERSISTED_QUERIES=apq`).
//!
//! A client registers a document on one replica (text and hash) and sends the bare hash next,
//! which the load balancer may route to another replica. So, around the decision: before it, a
//! hash this replica does not hold is looked up on Redis and copied into the local store (which
//! checks the hash again, so a document planted on Redis under someone else's hash is never
//! served); after it, a registration that passed inspection is copied to Redis. The decision
//! itself stays synchronous and sees only the local store.
//!
//! Registrations are a cache, not a limit: when Redis does not answer, the bare hash answers
//! `PERSISTED_QUERY_NOT_FOUND` and the client sends the text again, inspected like any other.

use crate::admission::Shared;
use crate::inspect::{GraphqlRequest, Inspection};
use crate::persisted::{self, ApqStore, Claim, DocumentHash, Origin};
use crate::state::{ApqError, Operation};

/// Copies into `local` the documents that `requests` name by hash only and that another replica
/// registered.
pub async fn fetch(shared: &Shared, local: &ApqStore, requests: &[GraphqlRequest]) {
    for request in requests {
        if request.query.is_some() {
            continue;
        }
        let Some(hash) = claimed_hash(request) else {
            continue;
        };
        if local.get(&hash).is_some() {
            continue;
        }
        if let Ok(Some(text)) = shared
            .call(Operation::ApqLookup, shared.redis.apq_get(&hash))
            .await
        {
            // `register` hashes the text again; a mismatch was already refused by `apq_get`.
            let _ = local.register(hash, &text);
        }
    }
}

/// Copies to Redis the registrations (text with its hash) of an inspected request.
pub async fn publish(shared: &Shared, requests: &[GraphqlRequest], inspection: &Inspection) {
    for (request, operation) in requests.iter().zip(&inspection.operations) {
        let (Some(text), Some(claimed)) = (&request.query, claimed_hash(request)) else {
            continue;
        };
        // Manifest documents need no registration.
        if operation.origin == Origin::Manifest {
            continue;
        }
        let registered = async {
            match shared.redis.apq_register(claimed, text).await {
                // The resolver refused a mismatch before inspection passed; nothing to store.
                Ok(_) | Err(ApqError::HashMismatch) => Ok(()),
                Err(ApqError::State(error)) => Err(error),
            }
        };
        let _ = shared.call(Operation::ApqRegistration, registered).await;
    }
}

/// The hash of APQ's `extensions.persistedQuery` (`documentId` names manifest documents, which
/// are never registered), as the resolver reads it.
fn claimed_hash(request: &GraphqlRequest) -> Option<DocumentHash> {
    let claim = Claim {
        persisted_query: request.persisted_query(),
        ..Claim::default()
    };
    persisted::claimed_hash(&claim).ok().flatten()
}
