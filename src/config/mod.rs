//! Every `GRAPHQL_FIREWALL_*` variable, parsed and validated once into plain values.
//!
//! # Why
//! A firewall whose protection can be switched off by a typo is not a firewall: configuration is
//! parsed once at start-up into a typed [`Config`], an invalid value stops the process with a message
//! naming the variable, the value and what is accepted, and unknown `GRAPHQL_FIREWALL_*` names are
//! refused. The environment sits behind [`Source`] so tests pass a map and never mutate the process
//! environment.
//!
//! # Layout
//! [`table`] lists every variable with its default and meaning; one file per concern reads its
//! variables ([`server`], [`requests`], [`limits`], [`clients`], [`identity`], [`edge`],
//! [`hardening`], [`persisted`], [`state`]);
//! [`values`] holds the value types with parsers of their own; [`parse`] the small parsers of
//! numbers, sizes, durations and switches; [`report`] what `check` and the start-up log print.
//! Configuration imports no module it configures: `lib.rs` turns these plain values into each
//! module's settings.

pub mod clients;
pub mod edge;
pub mod hardening;
pub mod identity;
pub mod limits;
pub mod parse;
pub mod persisted;
mod report;
pub mod requests;
pub mod server;
pub mod state;
pub mod table;
pub mod values;

use std::collections::HashMap;

pub use clients::ClientsConfig;
pub use edge::EdgeConfig;
pub use hardening::HardeningConfig;
pub use identity::{ApiKeysConfig, IdentityConfig, JwtConfig};
pub use limits::{CostConfig, LimitsConfig, SchemaSource};
pub use persisted::{ClientKeysConfig, ManifestSource, PersistedConfig};
pub use report::{Setting, insecure_choices, settings};
pub use requests::{RequestsConfig, WebSocketConfig};
pub use server::{ServerConfig, UpstreamConfig};
pub use state::{RedisConfig, StateConfig};
pub use table::*;
pub use values::*;

/// Where variables come from: the process environment in production, a map in tests.
pub trait Source {
    /// The value of `name`, `Err` when it is set but not valid UTF-8.
    fn get(&self, name: &str) -> Result<Option<String>, ConfigError>;
    /// Every variable name present in the source (to find unknown `GRAPHQL_FIREWALL_*` names).
    fn names(&self) -> Vec<String>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Env;

impl Source for Env {
    fn get(&self, name: &str) -> Result<Option<String>, ConfigError> {
        match std::env::var(name) {
            Ok(value) => Ok(Some(value)),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(raw)) => Err(ConfigError::Invalid {
                name: name.to_owned(),
                value: raw.to_string_lossy().into_owned(),
                accepted: "valid UTF-8".to_owned(),
            }),
        }
    }

    fn names(&self) -> Vec<String> {
        std::env::vars_os()
            .filter_map(|(name, _)| name.into_string().ok())
            .collect()
    }
}

impl<K, V> Source for HashMap<K, V>
where
    K: AsRef<str> + Eq + std::hash::Hash,
    V: AsRef<str>,
{
    fn get(&self, name: &str) -> Result<Option<String>, ConfigError> {
        Ok(self
            .iter()
            .find(|(key, _)| key.as_ref() == name)
            .map(|(_, value)| value.as_ref().to_owned()))
    }

    fn names(&self) -> Vec<String> {
        self.keys().map(|key| key.as_ref().to_owned()).collect()
    }
}

/// A configuration problem, always naming the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The variable is required and missing.
    #[error("{name} is required ({accepted})")]
    Missing { name: String, accepted: String },
    /// The value does not parse or is out of range.
    #[error("{name}={value:?} is not valid: expected {accepted}")]
    Invalid {
        name: String,
        value: String,
        accepted: String,
    },
    /// Unknown `GRAPHQL_FIREWALL_*` names: almost always a typo that would silently disable a setting.
    #[error("unknown variable(s) {}: not a setting of this version (known: see README.md)", names.join(", "))]
    Unknown { names: Vec<String> },
}

/// How the process is being started: `demo` embeds its own upstream, and offline tools
/// (`manifest check`, `analyse`) forward nothing, so neither requires the upstream URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Serve,
    Demo,
    Offline,
}

/// The whole, validated configuration, one part per concern.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub requests: RequestsConfig,
    pub limits: LimitsConfig,
    pub clients: ClientsConfig,
    pub identity: IdentityConfig,
    pub edge: EdgeConfig,
    pub hardening: HardeningConfig,
    pub persisted: PersistedConfig,
    pub state: StateConfig,
    /// Every variable with the value in force, for `check` and the start-up log.
    pub settings: Vec<Setting>,
}

impl Config {
    /// Reads and validates every variable of `source`.
    pub fn from_source(source: &dyn Source, profile: Profile) -> Result<Config, ConfigError> {
        report_unknown(source)?;
        let read = Reader { source };
        let clients = ClientsConfig::read(&read)?;
        let requests = RequestsConfig::read(&read)?;
        let identity = IdentityConfig::read(&read, clients.key_header.as_ref())?;
        // A browser sends a cookie cross-site on its own: a token in a cookie without the CSRF
        // guard would let any site act as the logged-in user.
        if identity
            .jwt
            .as_ref()
            .is_some_and(|jwt| jwt.source.cookie().is_some())
            && requests.csrf_required_headers.is_none()
        {
            return Err(ConfigError::Invalid {
                name: CSRF_PROTECTION.to_owned(),
                value: "off".to_owned(),
                accepted: format!(
                    "on while {AUTH_JWT_COOKIE} is set: a token in a cookie needs the CSRF guard"
                ),
            });
        }
        Ok(Config {
            server: ServerConfig::read(&read, profile)?,
            requests,
            limits: LimitsConfig::read(&read, profile)?,
            identity,
            edge: EdgeConfig::read(&read)?,
            clients,
            hardening: HardeningConfig::read(&read)?,
            persisted: PersistedConfig::read(&read, profile)?,
            state: StateConfig::read(&read)?,
            settings: settings(source)?,
        })
    }
}

fn report_unknown(source: &dyn Source) -> Result<(), ConfigError> {
    let mut unknown: Vec<String> = source
        .names()
        .into_iter()
        .filter(|name| name.starts_with(PREFIX) && variable(name).is_none())
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    unknown.sort();
    Err(ConfigError::Unknown { names: unknown })
}

/// Reads one variable through one parser: the value set, else the table's default, parsed alike;
/// the parser's error text is "what is accepted".
pub struct Reader<'a> {
    source: &'a dyn Source,
}

impl Reader<'_> {
    /// The text in force and whether it was set: an empty variable means "unset", as in most
    /// shells' `FOO= cmd` idiom.
    fn text(&self, name: &str) -> Result<(Option<String>, bool), ConfigError> {
        let set = self
            .source
            .get(name)?
            .map(|raw| raw.trim().to_owned())
            .filter(|value| !value.is_empty());
        match set {
            Some(value) => Ok((Some(value), true)),
            None => Ok((
                variable(name).and_then(|v| v.default).map(str::to_owned),
                false,
            )),
        }
    }

    /// The value set or the default; `None` when the variable has neither.
    pub fn optional<T>(
        &self,
        name: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        let (Some(text), _) = self.text(name)? else {
            return Ok(None);
        };
        parse(&text)
            .map(Some)
            .map_err(|accepted| ConfigError::Invalid {
                name: name.to_owned(),
                value: text,
                accepted,
            })
    }

    /// The value set or the default; an error naming the variable when it has neither.
    pub fn value<T>(
        &self,
        name: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        self.optional(name, parse)?
            .ok_or_else(|| ConfigError::Missing {
                name: name.to_owned(),
                accepted: variable(name).map_or("", |v| v.doc).to_owned(),
            })
    }

    /// Whether the operator set the variable (rather than relying on its default).
    pub fn is_set(&self, name: &str) -> Result<bool, ConfigError> {
        Ok(self.text(name)?.1)
    }
}

#[cfg(test)]
mod tests;
