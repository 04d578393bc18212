use super::*;

fn verified(method: AuthMethod, name: &str) -> Credential {
    Credential::Verified(Identity::verified(
        method,
        Subject::new(name),
        None,
        Scopes::default(),
    ))
}

fn refused_jwt() -> Credential {
    Credential::Refused(CredentialError::Jwt(JwtError::Expired))
}

fn refused_key() -> Credential {
    Credential::Refused(CredentialError::ApiKey(ApiKeyError::Unknown))
}

fn subject(result: &Result<Identity, AuthError>) -> Option<&str> {
    result
        .as_ref()
        .ok()
        .and_then(|identity| identity.subject.as_ref())
        .map(Subject::as_str)
}

#[test]
fn the_decision_matrix_holds_for_every_mode_and_credential() {
    use AuthMode::{Off, Optional, Required};
    // (mode, jwt, api key) → Ok(subject or None for anonymous) or Err(reason)
    type Row = (
        AuthMode,
        fn() -> Credential,
        fn() -> Credential,
        Result<Option<&'static str>, &'static str>,
    );
    let absent: fn() -> Credential = || Credential::Absent;
    let jwt: fn() -> Credential = || verified(AuthMethod::Jwt, "alice");
    let key: fn() -> Credential = || verified(AuthMethod::ApiKey, "billing");
    let table: &[Row] = &[
        (Required, absent, absent, Err("missing")),
        (Required, jwt, absent, Ok(Some("alice"))),
        (Required, absent, key, Ok(Some("billing"))),
        (Required, refused_jwt, absent, Err("expired")),
        (Required, absent, refused_key, Err("unknown_api_key")),
        (Required, jwt, key, Err("ambiguous")),
        (Required, refused_jwt, key, Err("ambiguous")),
        (Optional, absent, absent, Ok(None)),
        (Optional, jwt, absent, Ok(Some("alice"))),
        (Optional, absent, key, Ok(Some("billing"))),
        (Optional, refused_jwt, absent, Ok(None)),
        (Optional, absent, refused_key, Ok(None)),
        (Optional, jwt, key, Err("ambiguous")),
        (Off, absent, absent, Ok(None)),
        (Off, jwt, absent, Ok(None)),
        (Off, refused_jwt, refused_key, Ok(None)),
    ];
    for (i, (mode, jwt, key, want)) in table.iter().enumerate() {
        let got = decide(*mode, jwt(), key());
        match want {
            Ok(want_subject) => {
                assert_eq!(subject(&got), *want_subject, "row {i}: {got:?}");
                let identity = got.unwrap();
                assert_eq!(identity.is_verified(), want_subject.is_some(), "row {i}");
            }
            Err(reason) => assert_eq!(got.unwrap_err().reason(), *reason, "row {i}"),
        }
    }
}

#[test]
fn www_authenticate_carries_only_the_rfc_6750_code() {
    assert_eq!(
        AuthError::Missing.www_authenticate(),
        "Bearer realm=\"graphql\""
    );
    let expired = AuthError::Refused(CredentialError::Jwt(JwtError::Expired));
    assert_eq!(
        expired.www_authenticate(),
        "Bearer realm=\"graphql\", error=\"invalid_token\""
    );
    assert_eq!(expired.client_message(), "invalid credentials");
    let malformed = AuthError::Refused(CredentialError::Jwt(JwtError::BadRequest));
    assert_eq!(
        malformed.www_authenticate(),
        "Bearer realm=\"graphql\", error=\"invalid_request\""
    );
    assert_eq!(
        AuthError::Ambiguous.www_authenticate(),
        "Bearer realm=\"graphql\", error=\"invalid_request\""
    );
}

#[test]
fn auth_mode_parses_case_insensitively_and_names_what_is_accepted() {
    assert_eq!("required".parse(), Ok(AuthMode::Required));
    assert_eq!(" Optional ".parse(), Ok(AuthMode::Optional));
    assert_eq!("OFF".parse(), Ok(AuthMode::Off));
    let error = "yes".parse::<AuthMode>().unwrap_err().to_string();
    assert!(error.contains("required, optional or off"), "{error}");
}

#[test]
fn auth_mode_defaults_to_required_once_a_source_is_configured() {
    assert_eq!(AuthMode::default_for(false, false), AuthMode::Off);
    assert_eq!(AuthMode::default_for(true, false), AuthMode::Required);
    assert_eq!(AuthMode::default_for(false, true), AuthMode::Required);
}

#[test]
fn contradictory_auth_settings_are_configuration_errors() {
    assert_eq!(
        AuthMode::Required.check(false, false),
        Err(AuthConfigError::NoCredentialSource)
    );
    assert_eq!(
        AuthMode::Optional.check(false, false),
        Err(AuthConfigError::NoCredentialSource)
    );
    assert_eq!(
        AuthMode::Off.check(true, false),
        Err(AuthConfigError::SourcesIgnored)
    );
    assert_eq!(AuthMode::Required.check(false, true), Ok(()));
    assert_eq!(AuthMode::Off.check(false, false), Ok(()));
}

#[test]
fn scopes_drop_duplicates_and_empty_entries() {
    let scopes = Scopes::new(["read", "", "write", "read"]);
    assert_eq!(scopes.iter().collect::<Vec<_>>(), ["read", "write"]);
    assert!(scopes.contains("write"));
    assert!(!scopes.contains("admin"));
}
