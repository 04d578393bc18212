//! The one table of every `GRAPHQL_FIREWALL_*` variable: its name, its default (as the text an
//! operator would write, parsed by the same parser as a value that was set) and what it means.
//!
//! The unknown-name check, the defaults, `graphql-firewall check`'s listing and the test that
//! holds README.md's tables to this one all read it, so a variable cannot be added, renamed or
//! given another default in one place only.

/// One configuration variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variable {
    /// The full name, `GRAPHQL_FIREWALL_…`.
    pub name: &'static str,
    /// The value in force when the variable is unset; `None`: unset means "none", or the value is
    /// required (`UPSTREAM_URL`), or depends on the command (`SCHEMA` in `demo`).
    pub default: Option<&'static str>,
    /// What it does, in one line.
    pub doc: &'static str,
    pub section: Section,
}

/// The README section a variable is documented in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Server,
    Requests,
    Limits,
    Clients,
    Identity,
    Edge,
    Hardening,
    Persisted,
    State,
}

impl Section {
    /// The README heading.
    pub fn title(self) -> &'static str {
        match self {
            Section::Server => "Server and upstream",
            Section::Requests => "Request shape",
            Section::Limits => "Document limits and policy",
            Section::Clients => "Clients and budgets",
            Section::Identity => "Identity and access",
            Section::Edge => "Browser and network edge",
            Section::Hardening => "Response hardening",
            Section::Persisted => "Persisted queries and trusted clients",
            Section::State => "Shared state (several replicas)",
        }
    }
}

/// Prefix shared by every variable.
pub const PREFIX: &str = "GRAPHQL_FIREWALL_";

macro_rules! variables {
    ($( $section:ident { $( $name:ident = $default:expr, $doc:literal; )* } )*) => {
        $( $(
            #[doc = $doc]
            pub const $name: &str = concat!("GRAPHQL_FIREWALL_", stringify!($name));
        )* )*

        /// Every variable this build understands, in README order.
        pub const VARIABLES: &[Variable] = &[
            $( $( Variable { name: $name, default: $default, doc: $doc, section: Section::$section }, )* )*
        ];
    };
}

variables! {
    Server {
        UPSTREAM_URL = None, "The GraphQL endpoint requests are forwarded to (http:// or https://); required by serve.";
        LISTEN = Some("127.0.0.1:8080"), "Address and port of the traffic listener.";
        PATH = Some("/graphql"), "Path of the GraphQL endpoint.";
        METRICS_LISTEN = Some("127.0.0.1:9090"), "Admin listener serving /metrics, or off.";
        UPSTREAM_TIMEOUT = Some("30s"), "Total time for one upstream exchange.";
        UPSTREAM_CONNECT_TIMEOUT = Some("5s"), "Time to establish a new upstream connection.";
        READY_TIMEOUT = Some("2s"), "How long /readyz waits for the upstream.";
        SHUTDOWN_TIMEOUT = Some("30s"), "After SIGTERM/SIGINT, how long in-flight requests may finish.";
        HEADER_READ_TIMEOUT = Some("10s"), "From a connection (or a request's first byte) to its complete head.";
        IDLE_TIMEOUT = Some("60s"), "A keep-alive connection without traffic or a request in flight is closed.";
        BODY_READ_TIMEOUT = Some("15s"), "Deadline for the whole request body.";
        MAX_CONNECTIONS = Some("auto"), "Open connections of the process (auto: from the file descriptor limit).";
        MAX_CONNECTIONS_PER_IP = Some("256"), "Open connections of one client address (IPv6: one /64), or off.";
        MAX_CONCURRENT_UPSTREAM = Some("1024"), "Upstream requests in flight at once; more wait QUEUE_TIMEOUT.";
        QUEUE_TIMEOUT = Some("1s"), "How long a request waits for an upstream slot before 503 OVERLOADED.";
        WORKERS = Some("auto"), "Threads serving traffic (auto: one per available CPU).";
        LOG = Some("info"), "Log filter (tracing EnvFilter syntax).";
        LOG_FORMAT = Some("pretty"), "pretty or json.";
        LOG_SAMPLE = Some("1"), "Share (0-1) of allowed operations written to the audit log.";
    }
    Requests {
        MAX_BODY_BYTES = Some("1MiB"), "Largest request body after decompression (and GET query string).";
        MAX_BATCH = Some("5"), "Most operations in one JSON-array batch, or off.";
        CSRF_PROTECTION = Some("on"), "Refuse requests a browser could send cross-site without a preflight.";
        CSRF_REQUIRED_HEADERS = Some("x-apollo-operation-name,apollo-require-preflight,graphql-preflight"), "Headers any one of which proves a preflight.";
        MAX_VARIABLES = Some("100"), "Most variables per operation.";
        MAX_VARIABLE_DEPTH = Some("16"), "Deepest list/object nesting inside the variables.";
        MAX_VARIABLE_LIST = Some("1000"), "Longest list anywhere in the variables.";
        MAX_VARIABLES_BYTES = Some("256KiB"), "Size of the variables JSON, or off.";
        WS_ALLOWED_ORIGINS = None, "Browser origins (scheme://host[:port]) besides the endpoint's own that may open a WebSocket, or *; others get CSRF_BLOCKED.";
        WS_MAX_MESSAGE_BYTES = Some("256KiB"), "Largest WebSocket message from a client; over it the connection is closed (1009).";
        WS_MAX_SUBSCRIPTIONS = Some("20"), "Operations open at once on one WebSocket; one more gets SUBSCRIPTION_LIMIT_EXCEEDED.";
        WS_MAX_SUBSCRIPTIONS_PER_CLIENT = Some("100"), "Operations open at once by one client across its WebSockets, or off.";
        WS_INIT_TIMEOUT = Some("3s"), "Time for a WebSocket client to send connection_init (else 4408), and for the upstream to acknowledge it.";
        WS_KEEPALIVE = Some("30s"), "Keep-alive ping (or legacy ka) interval; a client silent for a whole interval is closed (1001), or off.";
        WS_WRITE_TIMEOUT = Some("10s"), "A message a WebSocket client does not take within this ends its connection (a client that stopped reading).";
        WS_IDLE_TIMEOUT = Some("5m"), "A WebSocket with no operation open and no client message for this long is closed (1001), or off.";
    }
    Limits {
        MAX_TOKENS = Some("15000"), "Lexical tokens of the document.";
        MAX_DEPTH = Some("10"), "Field depth.";
        MAX_ALIASES = Some("15"), "Aliased fields.";
        MAX_ROOT_FIELDS = Some("20"), "Root fields.";
        MAX_DIRECTIVES = Some("50"), "Directive usages.";
        MAX_FIELDS = Some("3500"), "Fields with fragments expanded.";
        MAX_COST = Some("5000"), "Static cost of one operation.";
        MAX_BATCH_COST = Some("10000"), "Sum of the static costs of a batch.";
        MAX_LIST_DEPTH = Some("off"), "Nested list fields of an operation, or off.";
        MAX_VALUE_NESTING = Some("32"), "List/object nesting inside a document's values (a parser bound).";
        INTROSPECTION = Some("block"), "block or allow __schema/__type.";
        MODE = Some("enforce"), "enforce refuses; monitor logs every violation and forwards.";
        RULE_MODES = None, "Per-rule mode overrides, e.g. cost:monitor.";
        EXPOSE_LIMITS = Some("on"), "Include limit and actual in rejections.";
        REJECT_STATUS = Some("400"), "HTTP status of rule rejections and parse failures: 400, 422 or auto (per Accept).";
        ANALYSIS_CACHE_BYTES = Some("64MiB"), "Memory bound of the analysis cache.";
        SCHEMA = None, "SDL file or directory of the backend's schema, or off.";
        DENY_FIELDS = None, "Schema coordinates nobody may select (User.passwordHash,Query.secretAdminToken, or a type); requires SCHEMA.";
        DEFAULT_LIST_SIZE = Some("10"), "Size of a list with no slicing argument or @listSize.";
        MAX_LIST_SIZE = Some("1000"), "Size assumed for a list whose size cannot be known (worst case).";
        SLICING_ARGUMENTS = Some("first,last,limit,pageSize"), "Schema-less mode: arguments whose value is a list's size.";
        COST_OBJECT_WEIGHT = Some("1"), "Cost of a composite field.";
        COST_SCALAR_WEIGHT = Some("0"), "Cost of a scalar or enum field.";
        COST_MUTATION_WEIGHT = Some("10"), "Cost of a mutation's root field.";
    }
    Clients {
        CLIENT_KEY_HEADER = None, "Header a gateway in front sets to name the client (e.g. x-api-key); believed only from a peer in TRUSTED_PROXIES.";
        TRUSTED_PROXIES = None, "CIDR list of peers whose X-Forwarded-For/Forwarded is believed.";
        RATE_LIMIT = Some("off"), "Requests per client, e.g. 100/s.";
        COST_BUDGET = Some("off"), "Cost points per client, e.g. 50000/min.";
        COST_BUDGET_MODE = Some("estimated"), "estimated: spend the estimate; actual: then settle with the measured cost.";
        RATE_LIMIT_HEADERS = Some("on"), "RateLimit-* headers on forwarded responses too.";
        RATE_LIMIT_MAX_CLIENTS = Some("100000"), "Clients tracked per budget, verified and anonymous clients each.";
        PROBE_LIMIT = Some("10"), "Schema-validation refusals per client per minute before a cool-down, or off.";
        PROBE_COOLDOWN = Some("60s"), "How long a probing client is refused.";
    }
    Identity {
        AUTH = None, "required, optional or off; when unset: required if AUTH_JWKS_URLS or API_KEYS_FILE is set, else off.";
        AUTH_JWKS_URLS = None, "Comma-separated JWKS URLs (https://, http:// on loopback only, file:///path) whose keys sign accepted tokens.";
        AUTH_JWKS_REFRESH = Some("5min"), "How often the key sets are fetched again.";
        AUTH_JWKS_UNKNOWN_KID_INTERVAL = Some("30s"), "Least time between two refreshes caused by tokens naming an unknown kid.";
        AUTH_JWT_ISSUERS = None, "Accepted iss values (comma-separated), or any; required with AUTH_JWKS_URLS.";
        AUTH_JWT_AUDIENCES = None, "Accepted aud values (comma-separated), or any; required with AUTH_JWKS_URLS.";
        AUTH_JWT_ALGORITHMS = Some("RS256,RS384,RS512,PS256,PS384,PS512,ES256,ES384,EdDSA"), "Algorithms a key may verify (the key decides, never the token; none is impossible).";
        AUTH_JWT_HEADER = Some("authorization"), "Header carrying the token.";
        AUTH_JWT_PREFIX = Some("Bearer"), "Scheme before the token in that header, or none for a bare token.";
        AUTH_JWT_COOKIE = None, "Cookie carrying the token when the header does not.";
        AUTH_JWT_LEEWAY = Some("30s"), "Clock skew tolerated on exp and nbf (at most 10min).";
        AUTH_JWT_CACHE_ENTRIES = Some("10000"), "Verified tokens remembered until they expire, or 0.";
        AUTH_JWT_VERIFY_RATE = Some("10/s:burst=50"), "Token signature checks per client address (remembered tokens are free), or off.";
        AUTH_CLIENT_CLAIM = None, "Claim naming the caller (default sub).";
        AUTH_TIER_CLAIM = None, "Claim naming the caller's tier (one of TIERS).";
        API_KEYS_FILE = None, "File of API keys, one per line: SHA-256 hex of the key, name, tier or -, optional comma-separated scopes; reloaded on change.";
        API_KEY_HEADER = Some("x-api-key"), "Header carrying an API key.";
        API_KEYS_RELOAD_INTERVAL = Some("5s"), "How often API_KEYS_FILE is checked for changes.";
        TIERS = None, "Per-tier budgets: free:rate=10/s,cost=1000/min;pro:rate=100/s,cost=50000/min.";
        LOG_SUBJECT = Some("hash"), "How the verified subject appears in the audit log: hash (a SHA-256 prefix) or clear.";
    }
    Edge {
        CORS_ALLOW_ORIGINS = None, "Origins allowed to call from a browser: exact (https://app.example.com), patterns (https://*.example.com), or *; unset: every preflight refused.";
        CORS_ALLOW_CREDENTIALS = Some("off"), "Let allowed origins send cookies and credentials (never with *).";
        CORS_ALLOW_HEADERS = Some("content-type, authorization, x-apollo-operation-name, apollo-require-preflight, graphql-preflight"), "Request headers allowed origins may send.";
        CORS_EXPOSE_HEADERS = Some("retry-after, ratelimit-limit, ratelimit-remaining, ratelimit-reset, x-request-id"), "Response headers allowed origins may read.";
        CORS_MAX_AGE = Some("10min"), "How long a browser may reuse a preflight answer.";
        ALLOW_IPS = None, "CIDR list: when set, only these client addresses are served (403 FORBIDDEN otherwise).";
        DENY_IPS = None, "CIDR list of client addresses refused with 403 FORBIDDEN.";
        ADMIN_ALLOW_IPS = Some("127.0.0.0/8,::1"), "CIDR list of peers the admin listener (/metrics) answers.";
        HSTS = Some("off"), "Strict-Transport-Security value (max-age=31536000; includeSubDomains), or off.";
    }
    Hardening {
        BLOCK_FIELD_SUGGESTIONS = Some("on"), "Remove \"Did you mean …?\" from upstream errors.";
        MASK_ERRORS = Some("details"), "off, details or all.";
        MASK_KEEP_CODES = Some("GRAPHQL_PARSE_FAILED,GRAPHQL_VALIDATION_FAILED,BAD_USER_INPUT,UNAUTHENTICATED,FORBIDDEN,PERSISTED_QUERY_NOT_FOUND,PERSISTED_QUERY_NOT_SUPPORTED"), "Codes whose message survives MASK_ERRORS=all.";
        SANITISE_MAX_BYTES = Some("8MiB"), "Largest errors member (or SSE event, multipart part) that is inspected.";
        SANITISE_OVERFLOW = Some("mask"), "An errors member that cannot be inspected: mask (one generic error) or refuse (cut off).";
        MAX_RESPONSE_BYTES = Some("64MiB"), "Largest upstream answer, decoded; over it: 502 RESPONSE_TOO_LARGE, or the answer is cut off.";
    }
    Persisted {
        PERSISTED_QUERIES = Some("off"), "off, apq, audit or allowlist.";
        PERSISTED_QUERIES_DIR = None, "Directory of manifests (*.json); unset: no manifest (demo: its built-in one).";
        PERSISTED_REQUIRE_ID = Some("off"), "In allowlist mode, refuse manifest text sent inline.";
        PERSISTED_SKIP_LIMITS = Some("on"), "Manifest documents skip the limits their text decides (on), those and cost (all), or none (off).";
        PERSISTED_LIMIT_VIOLATIONS = Some("error"), "A manifest entry breaking an enforced limit: error or warn.";
        PERSISTED_PASS_THROUGH = Some("off"), "Keep persisted-query members for an APQ-aware upstream.";
        PERSISTED_RELOAD_INTERVAL = Some("5s"), "How often the manifest directory is checked for changes, or off.";
        APQ_CACHE_BYTES = Some("16MiB"), "Memory bound of the APQ registrations.";
        APQ_TTL = Some("24h"), "Lifetime of an APQ registration.";
        TRUSTED_CLIENT_HEADER = None, "Header carrying a client key.";
        TRUSTED_CLIENT_KEY_HASHES = None, "Comma-separated SHA-256 hex of the accepted client keys.";
        TRUSTED_CLIENT_SKIP_LIMITS = Some("off"), "Callers holding a client key skip the limits the text decides (on), those and cost (all), or none (off).";
    }
    State {
        STATE = Some("memory"), "Where budgets, probe cool-downs and APQ registrations live: memory (this process) or redis (shared by every replica).";
        REDIS_URL = None, "redis:// or rediss:// (TLS) address of the shared Redis; required with STATE=redis.";
        REDIS_TIMEOUT = Some("50ms"), "Longest one Redis call may take, reconnecting included, before REDIS_FAILURE_MODE applies.";
        REDIS_KEY_PREFIX = Some("graphql-firewall:"), "Prefix of every key, so that several deployments can share one Redis.";
        REDIS_REQUIRED_TO_START = Some("off"), "on: serve exits 1 when Redis does not answer within READY_TIMEOUT at start-up (off: it serves under REDIS_FAILURE_MODE until Redis answers).";
        REDIS_FAILURE_MODE = Some("local"), "Redis unreachable: local (this replica's own budgets), open (admit) or closed (503 STATE_UNAVAILABLE).";
    }
}

/// The table entry of `name`.
pub fn variable(name: &str) -> Option<&'static Variable> {
    VARIABLES.iter().find(|variable| variable.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_prefixed() {
        let mut names: Vec<&str> = VARIABLES.iter().map(|v| v.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), VARIABLES.len());
        assert!(names.iter().all(|name| name.starts_with(PREFIX)));
        assert_eq!(variable(MAX_DEPTH).and_then(|v| v.default), Some("10"));
    }
}
