//! The demo API: users, posts and comments over deterministic in-memory data, served by
//! `async-graphql` with its own validation (so it really emits "Did you mean …?" suggestions and
//! answers introspection, which the firewall must strip and block).

mod subscription;

use std::sync::{Arc, RwLock};

use async_graphql::{Context, ErrorExtensions, ID, Object, Result, Schema, Union};

pub use subscription::Subscription;

/// The demo schema type.
pub type DemoSchema = Schema<Query, Mutation, Subscription>;

/// Builds the schema over fresh data.
pub fn build() -> DemoSchema {
    Schema::build(Query, Mutation, Subscription)
        .data(Arc::new(Store::seeded()))
        .finish()
}

const NAMES: [&str; 20] = [
    "Ada", "Grace", "Alan", "Barbara", "Edsger", "Donald", "Frances", "John", "Margaret", "Ken",
    "Dennis", "Radia", "Leslie", "Tony", "Niklaus", "Shafi", "Butler", "Sophie", "Guido", "Linus",
];
const MAX_PAGE: i32 = 100;

#[derive(Debug, Clone)]
struct PostRow {
    id: u32,
    author: u32,
    title: String,
    body: String,
}

/// All demo data. Users and comments are fixed; posts change through mutations.
#[derive(Debug)]
pub struct Store {
    posts: RwLock<Vec<PostRow>>,
    next_post: std::sync::atomic::AtomicU32,
    /// Every created post, for `Subscription.postAdded`.
    post_added: tokio::sync::broadcast::Sender<PostRow>,
}

impl Store {
    fn seeded() -> Store {
        let posts: Vec<PostRow> = (0..NAMES.len() as u32 * 3)
            .map(|id| PostRow {
                id,
                author: id / 3,
                title: format!("Post {id} by {}", user_name(id / 3)),
                body: format!("Notes number {} from {}.", id % 3 + 1, user_name(id / 3)),
            })
            .collect();
        let next = posts.len() as u32;
        Store {
            posts: RwLock::new(posts),
            next_post: std::sync::atomic::AtomicU32::new(next),
            post_added: tokio::sync::broadcast::channel(subscription::POST_ADDED_BACKLOG).0,
        }
    }

    fn posts(&self) -> Vec<PostRow> {
        self.posts.read().map(|p| p.clone()).unwrap_or_default()
    }
}

fn store<'a>(ctx: &Context<'a>) -> Result<&'a Arc<Store>> {
    ctx.data::<Arc<Store>>()
}

fn user_name(id: u32) -> &'static str {
    NAMES.get(id as usize).copied().unwrap_or("Nobody")
}

fn page(first: i32) -> usize {
    first.clamp(0, MAX_PAGE) as usize
}

fn parse_id(id: &ID, prefix: &str) -> Option<u32> {
    id.as_str().strip_prefix(prefix)?.parse().ok()
}

/// A person.
pub struct User(u32);

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(format!("u{}", self.0))
    }

    async fn name(&self) -> &'static str {
        user_name(self.0)
    }

    async fn email(&self) -> String {
        format!("{}@example.com", user_name(self.0).to_ascii_lowercase())
    }

    async fn posts(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] first: i32,
    ) -> Result<Vec<Post>> {
        Ok(store(ctx)?
            .posts()
            .into_iter()
            .filter(|p| p.author == self.0)
            .take(page(first))
            .map(Post)
            .collect())
    }

    async fn friends(&self, #[graphql(default = 10)] first: i32) -> Vec<User> {
        let count = NAMES.len() as u32;
        (1..=3)
            .map(|step| User((self.0 + step * 7) % count))
            .take(page(first))
            .collect()
    }
}

/// A post.
pub struct Post(PostRow);

#[Object]
impl Post {
    async fn id(&self) -> ID {
        ID(format!("p{}", self.0.id))
    }

    async fn title(&self) -> &str {
        &self.0.title
    }

    async fn body(&self) -> &str {
        &self.0.body
    }

    async fn comments(&self, #[graphql(default = 10)] first: i32) -> Vec<Comment> {
        (0..2)
            .map(|n| Comment {
                id: self.0.id * 2 + n,
                author: (self.0.author + n + 1) % NAMES.len() as u32,
            })
            .take(page(first))
            .collect()
    }

    async fn author(&self) -> User {
        User(self.0.author)
    }
}

/// A comment on a post.
pub struct Comment {
    id: u32,
    author: u32,
}

#[Object]
impl Comment {
    async fn id(&self) -> ID {
        ID(format!("c{}", self.id))
    }

    async fn text(&self) -> String {
        format!("{} agrees.", user_name(self.author))
    }

    async fn author(&self) -> User {
        User(self.author)
    }
}

fn internal_failure() -> async_graphql::Error {
    async_graphql::Error::new(
        "connection to users-db.internal:5432 refused\n    at UserRepository.find (/app/src/repository/users.rs:42:7)\n    at resolve_user (/app/src/schema.rs:118:5)",
    )
    .extend_with(|_, extensions| {
        extensions.set("code", "INTERNAL_SERVER_ERROR");
        extensions.set(
            "exception",
            async_graphql::Value::from_json(serde_json::json!({
                "stacktrace": [
                    "Error: connection refused",
                    "    at UserRepository.find (/app/src/repository/users.rs:42:7)",
                ],
                "host": "users-db.internal",
            }))
            .unwrap_or_default(),
        );
    })
}

/// What `search` finds.
#[derive(Union)]
pub enum SearchResult {
    User(User),
    Post(Post),
}

/// Read operations.
pub struct Query;

#[Object]
impl Query {
    /// `user(id: "crash")` fails the way careless servers do — with a stack trace in the message
    /// and exception details in `extensions` — so the firewall's error masking can be seen at work.
    async fn user(&self, id: ID) -> Result<Option<User>> {
        if id.as_str() == "crash" {
            return Err(internal_failure());
        }
        Ok(parse_id(&id, "u")
            .filter(|n| (*n as usize) < NAMES.len())
            .map(User))
    }

    async fn users(&self, #[graphql(default = 10)] first: i32) -> Vec<User> {
        (0..NAMES.len() as u32)
            .take(page(first))
            .map(User)
            .collect()
    }

    /// One entry per id, in order (`null` for an unknown id): the list's length is the
    /// argument's, whatever `first`-style limit the firewall's defaults assume.
    async fn users_by_ids(&self, ids: Vec<ID>) -> Vec<Option<User>> {
        ids.iter()
            .map(|id| {
                parse_id(id, "u")
                    .filter(|n| (*n as usize) < NAMES.len())
                    .map(User)
            })
            .collect()
    }

    async fn search(
        &self,
        ctx: &Context<'_>,
        term: String,
        #[graphql(default = 10)] first: i32,
    ) -> Result<Vec<SearchResult>> {
        let term = term.to_lowercase();
        let users = (0..NAMES.len() as u32)
            .filter(|id| user_name(*id).to_lowercase().contains(&term))
            .map(|id| SearchResult::User(User(id)));
        let posts = store(ctx)?
            .posts()
            .into_iter()
            .filter(|p| p.title.to_lowercase().contains(&term))
            .map(|p| SearchResult::Post(Post(p)));
        Ok(users.chain(posts).take(page(first)).collect())
    }
}

/// Write operations.
pub struct Mutation;

#[Object]
impl Mutation {
    async fn create_post(
        &self,
        ctx: &Context<'_>,
        author_id: ID,
        title: String,
        body: String,
    ) -> Result<Post> {
        let author = parse_id(&author_id, "u")
            .filter(|n| (*n as usize) < NAMES.len())
            .ok_or("unknown author")?;
        let store = store(ctx)?;
        let id = store
            .next_post
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let row = PostRow {
            id,
            author,
            title,
            body,
        };
        store
            .posts
            .write()
            .map_err(|_| "store unavailable")?
            .push(row.clone());
        // Nobody listening is not a failure.
        let _ = store.post_added.send(row.clone());
        Ok(Post(row))
    }

    async fn delete_post(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let Some(id) = parse_id(&id, "p") else {
            return Ok(false);
        };
        let mut posts = store(ctx)?.posts.write().map_err(|_| "store unavailable")?;
        let before = posts.len();
        posts.retain(|p| p.id != id);
        Ok(posts.len() != before)
    }
}
