//! Answers any GraphQL document gh sends from the selections themselves.
//!
//! Rather than one canned answer per gh operation, every field is answered by its name and the
//! object it belongs to (a repository, an issue, a pull request, ...), so new or changed gh
//! queries keep working. Issues come from the mutable [`World`]; everything else is derived
//! from the repository's name, so different repositories give different answers.

use serde_json::{json, Map, Value as Json};

use super::parse::{Document, Field, Selection};
use crate::data::{repo_key, Issue, Pr, World, LABELS, SHA, TIME};
use crate::date;

/// What an object in the answer is.
#[derive(Debug, Clone)]
enum Entity {
    Repo {
        owner: String,
        name: String,
    },
    /// `updated`: when it last changed, in seconds since the Unix epoch.
    Issue {
        repo: String,
        issue: Issue,
        updated: u64,
    },
    /// As the world has it now, changes made on GitHub from outside included
    /// ([`World::retitle_pr`], ...).
    Pr {
        repo: String,
        pr: Pr,
        updated: u64,
    },
    Label(usize),
    User(String),
    Release(usize),
    Check {
        repo: String,
    },
    Other,
}

/// Type names the resolver knows; fragments on other (interface) types always apply.
const CONCRETE: [&str; 10] = [
    "Repository",
    "Issue",
    "PullRequest",
    "Label",
    "User",
    "Organization",
    "Bot",
    "Release",
    "CheckRun",
    "StatusContext",
];

const RELEASES: [&str; 2] = ["v1.0.0", "v0.9.0"];

/// Resolves one operation against the world.
pub struct Resolver<'a> {
    doc: &'a Document,
    variables: &'a Json,
    world: &'a mut World,
    /// The repository of the last `repository(...)` seen: mutations and ids refer to it.
    repo: (String, String),
}

impl<'a> Resolver<'a> {
    /// A resolver for `doc` with `variables`.
    pub fn new(doc: &'a Document, variables: &'a Json, world: &'a mut World) -> Self {
        Resolver {
            doc,
            variables,
            world,
            repo: ("octo".into(), "repo".into()),
        }
    }

    /// The `data` object for the operation at `index`.
    pub fn operation(&mut self, index: usize) -> Json {
        let Some(op) = self.doc.operations.get(index) else {
            return Json::Null;
        };
        let selections = op.selections.clone();
        let mutation = op.kind == "mutation";
        let mut out = Map::new();
        for field in self.fields(&selections, if mutation { "Mutation" } else { "Query" }) {
            let value = if mutation {
                self.mutation(&field)
            } else {
                self.root_field(&field)
            };
            out.insert(field.key.clone(), value);
        }
        Json::Object(out)
    }

    fn arg(&self, field: &Field, name: &str) -> Json {
        field
            .args
            .get(name)
            .map(|v| v.resolve(self.variables))
            .unwrap_or_default()
    }

    /// The fields of a selection set that apply to an object of type `typename`, with fragment
    /// spreads and inline fragments flattened.
    fn fields(&self, selections: &[Selection], typename: &str) -> Vec<Field> {
        let mut out = Vec::new();
        for selection in selections {
            match selection {
                Selection::Field(f) => out.push(f.clone()),
                Selection::Inline(on, inner) => {
                    if applies(on.as_deref(), typename) {
                        out.extend(self.fields(inner, typename));
                    }
                }
                Selection::Spread(name) => {
                    if let Some(fragment) = self.doc.fragments.get(name) {
                        if applies(Some(&fragment.on), typename) {
                            out.extend(self.fields(&fragment.selections, typename));
                        }
                    }
                }
            }
        }
        out
    }

    fn root_field(&mut self, field: &Field) -> Json {
        let entity = match field.name.as_str() {
            "repository" => {
                let owner = self.arg(field, "owner");
                let name = self.arg(field, "name");
                let owner = owner.as_str().unwrap_or("octo").to_owned();
                let name = name.as_str().unwrap_or("repo").to_owned();
                self.repo = (owner.clone(), name.clone());
                Entity::Repo { owner, name }
            }
            "viewer" => Entity::User("octocat".into()),
            "repositoryOwner" | "organization" | "user" => {
                let login = self.arg(field, "login");
                Entity::User(login.as_str().unwrap_or("octocat").to_owned())
            }
            "node" => {
                let entity = self.node_by_id(self.arg(field, "id").as_str().unwrap_or(""));
                // Nested objects without a repository of their own (commits, check runs)
                // belong to the node's repository.
                let repo = repo_of(&entity, &self.repo);
                if let Some((owner, name)) = repo.split_once('/') {
                    self.repo = (owner.to_owned(), name.to_owned());
                }
                entity
            }
            "search" => return self.connection(field, &Entity::Other),
            "rateLimit" => Entity::Other,
            _ => Entity::Other,
        };
        self.object(field, &entity, None)
    }

    fn node_by_id(&mut self, id: &str) -> Entity {
        if let Some((repo, number)) = parse_issue_id(id) {
            if let Some(issue) = self.world.issue(&repo, number) {
                return self.issue_entity(repo, issue);
            }
        }
        if let Some((repo, number)) = id
            .strip_prefix("PR_")
            .and_then(|rest| rest.rsplit_once('#'))
        {
            if let Ok(number) = number.parse() {
                return self.pr_entity(repo.to_owned(), number);
            }
        }
        if let Some(repo) = id.strip_prefix("R_") {
            if let Some((owner, name)) = repo.split_once('/') {
                return Entity::Repo {
                    owner: owner.into(),
                    name: name.into(),
                };
            }
        }
        Entity::Other
    }

    fn mutation(&mut self, field: &Field) -> Json {
        let input = self.arg(field, "input");
        let text = |key: &str| {
            input
                .get(key)
                .and_then(Json::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let entity = match field.name.as_str() {
            "createIssue" => {
                let repo = text("repositoryId")
                    .strip_prefix("R_")
                    .map(str::to_owned)
                    .unwrap_or_else(|| repo_key(&self.repo.0, &self.repo.1));
                let number = self.world.add_issue(&repo, &text("title"), &text("body"));
                self.world
                    .issue(&repo, number)
                    .map(|issue| self.issue_entity(repo, issue))
            }
            "closeIssue" | "reopenIssue" => {
                let open = field.name == "reopenIssue";
                parse_issue_id(&text("issueId")).and_then(|(repo, number)| {
                    self.world.set_open(&repo, number, open);
                    self.world
                        .issue(&repo, number)
                        .map(|issue| self.issue_entity(repo, issue))
                })
            }
            _ => None,
        };
        // A mutation's payload holds the changed object under a field named after its type.
        let payload_entity = entity.unwrap_or(Entity::Other);
        let mut out = Map::new();
        for sub in self.fields(&field.selections, "Payload") {
            let value = match sub.name.as_str() {
                "issue" => self.object(&sub, &payload_entity, None),
                "clientMutationId" => json!("fake-mutation"),
                _ => self.value(&sub, &payload_entity, &field.name),
            };
            out.insert(sub.key.clone(), value);
        }
        Json::Object(out)
    }

    /// An object: the fields that apply to it.
    fn object(&mut self, field: &Field, entity: &Entity, fallback_type: Option<&str>) -> Json {
        let typename = typename(entity)
            .or(fallback_type)
            .or_else(|| first_fragment_type(&field.selections))
            .unwrap_or("Node")
            .to_owned();
        let mut out = Map::new();
        for sub in self.fields(&field.selections, &typename) {
            let value = if sub.name == "__typename" {
                json!(typename)
            } else {
                self.value(&sub, entity, &field.name)
            };
            out.insert(sub.key.clone(), value);
        }
        Json::Object(out)
    }

    /// The value of `field` on `entity` (`parent` is the field that produced `entity`).
    fn value(&mut self, field: &Field, entity: &Entity, parent: &str) -> Json {
        if field.selections.is_empty() {
            return scalar(&field.name, entity, parent);
        }
        if is_connection(field) {
            return self.connection(field, entity);
        }
        if PLAIN_LISTS.contains(&field.name.as_str()) {
            return json!([]);
        }
        if NULL_OBJECTS.contains(&field.name.as_str()) {
            return Json::Null;
        }
        let repo = repo_of(entity, &self.repo);
        let child = match field.name.as_str() {
            "repository" | "baseRepository" | "headRepository" => {
                let (owner, name) = repo.split_once('/').unwrap_or(("octo", "repo"));
                Entity::Repo {
                    owner: owner.into(),
                    name: name.into(),
                }
            }
            "owner"
            | "author"
            | "user"
            | "viewer"
            | "actor"
            | "editor"
            | "headRepositoryOwner"
            | "repositoryOwner" => {
                let login = match entity {
                    Entity::Repo { owner, .. } => owner.clone(),
                    _ => "octocat".into(),
                };
                Entity::User(login)
            }
            "issue" | "issueOrPullRequest" => {
                let number = self.arg(field, "number").as_u64().unwrap_or(1);
                match self.world.issue(&repo, number) {
                    Some(issue) => self.issue_entity(repo, issue),
                    None => return Json::Null,
                }
            }
            "pullRequest" => {
                let number = self.arg(field, "number").as_u64().unwrap_or(1);
                self.pr_entity(repo, number)
            }
            "latestRelease" | "release" => Entity::Release(0),
            // Anything else is a plain object about the same thing.
            _ => match entity {
                Entity::Check { repo } => Entity::Check { repo: repo.clone() },
                _ => Entity::Other,
            },
        };
        let fallback = match field.name.as_str() {
            "issueOrPullRequest" => Some("Issue"),
            _ => None,
        };
        self.object(field, &child, fallback)
    }

    /// `nodes`/`edges`/`totalCount`/`pageInfo` of a connection.
    fn connection(&mut self, field: &Field, entity: &Entity) -> Json {
        let repo = repo_of(entity, &self.repo);
        let items: Vec<Entity> = match field.name.as_str() {
            "issues" => {
                let states = self.arg(field, "states");
                let open = match states.as_array().map(Vec::as_slice) {
                    Some([s]) if s == "CLOSED" => Some(false),
                    Some([s]) if s == "OPEN" => Some(true),
                    Some(_) => None,
                    None => Some(true),
                };
                self.world
                    .listed(&repo, open)
                    .into_iter()
                    .map(|issue| self.issue_entity(repo.clone(), issue))
                    .collect()
            }
            "pullRequests" => (1..=2)
                .rev()
                .map(|number| self.pr_entity(repo.clone(), number))
                .collect(),
            // An issue's or a pull request's own labels; a repository's are all it defines.
            "labels" => {
                let on = match entity {
                    Entity::Issue { issue, .. } => Some(&issue.labels),
                    Entity::Pr { pr, .. } => Some(&pr.labels),
                    _ => None,
                };
                (0..LABELS.len())
                    .filter(|i| on.is_none_or(|on| on.iter().any(|l| l == LABELS[*i].0)))
                    .map(Entity::Label)
                    .collect()
            }
            "releases" => (0..RELEASES.len()).map(Entity::Release).collect(),
            "repositories" => {
                let owner = match entity {
                    Entity::User(login) => login.clone(),
                    _ => "octocat".into(),
                };
                ["widgets", "gadgets"]
                    .iter()
                    .map(|name| Entity::Repo {
                        owner: owner.clone(),
                        name: (*name).into(),
                    })
                    .collect()
            }
            "contexts" | "checkRuns" => vec![Entity::Check { repo }],
            "search" => vec![Entity::Other, Entity::Other],
            "commits" | "files" => vec![Entity::Other],
            "nodes" | "edges" => vec![Entity::Other],
            _ => Vec::new(),
        };
        let mut out = Map::new();
        let sub_fields = self.fields(&field.selections, "Connection");
        for sub in sub_fields {
            let value = match sub.name.as_str() {
                "totalCount" | "issueCount" | "repositoryCount" | "codeCount" => {
                    json!(items.len())
                }
                "nodes" => {
                    let mut nodes = Vec::new();
                    for (i, item) in items.iter().enumerate() {
                        nodes.push(self.item(&sub, item, i));
                    }
                    Json::Array(nodes)
                }
                "edges" => {
                    let mut edges = Vec::new();
                    for (i, item) in items.iter().enumerate() {
                        let mut edge = Map::new();
                        for part in self.fields(&sub.selections, "Edge") {
                            let value = match part.name.as_str() {
                                "node" => self.item(&part, item, i),
                                "cursor" => json!(format!("cursor{i}")),
                                _ => self.value(&part, item, "edges"),
                            };
                            edge.insert(part.key.clone(), value);
                        }
                        edges.push(Json::Object(edge));
                    }
                    Json::Array(edges)
                }
                _ => self.value(&sub, entity, &field.name),
            };
            out.insert(sub.key.clone(), value);
        }
        Json::Object(out)
    }

    fn issue_entity(&self, repo: String, issue: Issue) -> Entity {
        let updated = self.world.issue_modified(&repo, issue.number);
        Entity::Issue {
            repo,
            issue,
            updated,
        }
    }

    fn pr_entity(&self, repo: String, number: u64) -> Entity {
        Entity::Pr {
            pr: self.world.pr(&repo, number),
            updated: self.world.pr_modified(&repo, number),
            repo,
        }
    }

    fn item(&mut self, field: &Field, item: &Entity, index: usize) -> Json {
        let _ = index;
        self.object(field, item, None)
    }
}

/// Fields that are lists but not connections; answered empty.
const PLAIN_LISTS: [&str; 7] = [
    // `__type(name: ...) { fields { name } }`: gh asks which fields the schema has before it
    // builds some queries; an empty list makes it use the fields every GitHub has.
    "fields",
    "reactionGroups",
    "issueTemplates",
    "pullRequestTemplates",
    "fundingLinks",
    "contactLinks",
    "errors",
];

/// Optional objects that are absent in the fake world (a fork's parent, a milestone...).
const NULL_OBJECTS: [&str; 7] = [
    "parent",
    "templateRepository",
    "milestone",
    "mergedBy",
    "autoMergeRequest",
    "mergeCommit",
    "closedBy",
];

fn is_connection(field: &Field) -> bool {
    field.selections.iter().any(|s| match s {
        Selection::Field(f) => matches!(f.name.as_str(), "nodes" | "edges" | "totalCount"),
        _ => false,
    })
}

fn applies(on: Option<&str>, typename: &str) -> bool {
    match on {
        None => true,
        Some(t) => t == typename || !CONCRETE.contains(&t),
    }
}

fn first_fragment_type(selections: &[Selection]) -> Option<&'static str> {
    selections.iter().find_map(|s| match s {
        Selection::Inline(Some(t), _) => CONCRETE.iter().find(|c| *c == t).copied(),
        _ => None,
    })
}

fn typename(entity: &Entity) -> Option<&'static str> {
    Some(match entity {
        Entity::Repo { .. } => "Repository",
        Entity::Issue { .. } => "Issue",
        Entity::Pr { .. } => "PullRequest",
        Entity::Label(_) => "Label",
        Entity::User(_) => "User",
        Entity::Release(_) => "Release",
        Entity::Check { .. } => "CheckRun",
        Entity::Other => return None,
    })
}

fn repo_of(entity: &Entity, fallback: &(String, String)) -> String {
    match entity {
        Entity::Repo { owner, name } => repo_key(owner, name),
        Entity::Issue { repo, .. } | Entity::Pr { repo, .. } | Entity::Check { repo } => {
            repo.clone()
        }
        _ => repo_key(&fallback.0, &fallback.1),
    }
}

fn parse_issue_id(id: &str) -> Option<(String, u64)> {
    let (repo, number) = id.strip_prefix("I_")?.rsplit_once('#')?;
    Some((repo.to_owned(), number.parse().ok()?))
}

/// A scalar field's value, by its name and the object it belongs to.
fn scalar(name: &str, entity: &Entity, parent: &str) -> Json {
    let repo = match entity {
        Entity::Repo { owner, name } => format!("{owner}/{name}"),
        Entity::Issue { repo, .. } | Entity::Pr { repo, .. } | Entity::Check { repo } => {
            repo.clone()
        }
        _ => "octo/repo".to_owned(),
    };
    let url = |path: &str| json!(format!("https://github.com/{repo}{path}"));
    match (entity, name) {
        (Entity::Issue { issue, .. }, "number") => json!(issue.number),
        (Entity::Issue { issue, .. }, "title") => json!(issue.title),
        (Entity::Issue { issue, .. }, "body") => json!(issue.body),
        (Entity::Issue { issue, .. }, "state") => json!(if issue.open { "OPEN" } else { "CLOSED" }),
        (Entity::Issue { issue, .. }, "closed") => json!(!issue.open),
        (Entity::Issue { issue, .. }, "closedAt") => {
            if issue.open {
                Json::Null
            } else {
                json!(TIME)
            }
        }
        (Entity::Issue { issue, repo, .. }, "id") => json!(format!("I_{repo}#{}", issue.number)),
        (Entity::Issue { updated, .. } | Entity::Pr { updated, .. }, "updatedAt") => {
            json!(date::rfc3339(*updated))
        }
        (Entity::Issue { issue, .. }, "url") => url(&format!("/issues/{}", issue.number)),
        (Entity::Pr { pr, .. }, "number") => json!(pr.number),
        (Entity::Pr { pr, .. }, "title") => json!(pr.title),
        (Entity::Pr { pr, .. }, "body") => {
            json!(format!("This change improves things ({}).", pr.number))
        }
        (Entity::Pr { .. }, "state") => json!("OPEN"),
        (Entity::Pr { pr, repo, .. }, "id") => json!(format!("PR_{repo}#{}", pr.number)),
        (Entity::Pr { pr, .. }, "url") => url(&format!("/pull/{}", pr.number)),
        (Entity::Pr { pr, .. }, "headRefName") => json!(format!("feature-{}", pr.number)),
        (Entity::Pr { pr, .. }, "headRefOid") => json!(pr.head),
        // Each push to its branch adds a commit of one line.
        (Entity::Pr { pr, .. }, "additions") => json!(pr.commits),
        (Entity::Pr { .. }, "closedAt" | "mergedAt") => Json::Null,
        (Entity::Repo { name, .. }, "name") => json!(name),
        (Entity::Repo { owner, name }, "id") => json!(format!("R_{}", repo_key(owner, name))),
        (Entity::Repo { .. }, "nameWithOwner") => json!(repo),
        (Entity::Repo { .. }, "description") => {
            json!(format!("The {repo} repository, served by the fake GitHub"))
        }
        (Entity::Repo { .. }, "url") => url(""),
        (Entity::Repo { .. }, "homepageUrl") => json!(""),
        (Entity::Label(i), "name") => json!(LABELS[*i].0),
        (Entity::Label(i), "color") => json!(LABELS[*i].1),
        (Entity::Label(i), "description") => json!(LABELS[*i].2),
        (Entity::Label(i), "id") => json!(format!("L_{i}")),
        (Entity::User(login), "login") => json!(login),
        (Entity::User(login), "name") => json!(format!("{login} (fake)")),
        (Entity::User(login), "id") => json!(format!("U_{login}")),
        (Entity::Release(i), "tagName" | "name") => json!(RELEASES[*i]),
        (Entity::Release(i), "isLatest") => json!(*i == 0),
        (Entity::Check { .. }, "name") => json!("build"),
        (Entity::Check { .. }, "status") => json!("COMPLETED"),
        (Entity::Check { .. }, "conclusion") => json!("SUCCESS"),
        (Entity::Check { .. }, "state") => json!("SUCCESS"),
        (_, "name") => json!(match parent {
            "defaultBranchRef" | "baseRef" | "headRef" => "main",
            "primaryLanguage" | "languages" => "Rust",
            "licenseInfo" => "MIT License",
            "workflow" => "CI",
            _ => "main",
        }),
        (_, "login") => json!("octocat"),
        (_, "url" | "permalink" | "detailsUrl" | "targetUrl" | "link") => url(""),
        (_, "resourcePath") => json!(format!("/{repo}")),
        (_, "id") => json!(format!("N_{parent}")),
        (_, "oid" | "headRefOid" | "baseRefOid" | "sha" | "abbreviatedOid") => json!(SHA),
        (_, "baseRefName") => json!("main"),
        (_, "headRefName") => json!("main"),
        (_, "state") => json!("OPEN"),
        (_, "stateReason" | "endCursor" | "startCursor") => Json::Null,
        (_, "status") => json!("COMPLETED"),
        (_, "conclusion") => json!("SUCCESS"),
        (_, "reviewDecision") => json!("APPROVED"),
        (_, "mergeable") => json!("MERGEABLE"),
        (_, "mergeStateStatus") => json!("CLEAN"),
        (_, "visibility") => json!("PUBLIC"),
        (_, "viewerPermission") => json!("ADMIN"),
        (_, "viewerSubscription") => json!("SUBSCRIBED"),
        (_, "content") => json!("THUMBS_UP"),
        (_, "color") => json!("ededed"),
        (_, "authorAssociation") => json!("OWNER"),
        (_, "remaining") => json!(4999),
        (_, "limit") => json!(5000),
        (_, "cost" | "used") => json!(1),
        (_, "resetAt") => json!(TIME),
        (_, "hasIssuesEnabled" | "hasWikiEnabled" | "hasProjectsEnabled") => json!(true),
        (_, "totalCount" | "number" | "additions" | "deletions" | "changedFiles" | "count")
        | (_, "stargazerCount" | "forkCount" | "diskUsage" | "databaseId" | "size") => json!(1),
        (_, n) if n.ends_with("At") => json!(TIME),
        (_, n)
            if n.starts_with("is")
                || n.starts_with("has")
                || n.starts_with("requires")
                || n.starts_with("viewerCan")
                || n.starts_with("viewerHas")
                || n.starts_with("viewerDid")
                || n.starts_with("can")
                || n.ends_with("Allowed")
                || n.ends_with("Enabled")
                || matches!(n, "closed" | "merged" | "locked" | "maintainerCanModify") =>
        {
            json!(false)
        }
        (_, "title") => json!(format!("A title in {repo}")),
        (_, "body" | "description" | "text") => json!(format!("Text about {repo}.")),
        (_, "context") => json!("ci/build"),
        (_, "event") => json!("push"),
        (_, "path") => json!("src/main.rs"),
        (_, other) => json!(format!("{other} of {repo}")),
    }
}
