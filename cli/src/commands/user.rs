//! `lrs user create|list|get|disable|enable|reset-password`: users, managed by organisation
//! admins for their own organisation and by the service desk for any.

use clap::{Subcommand, ValueEnum};
use lrs_proto::identity::v1::{
    CreateUserRequest, DisableUserRequest, EnableUserRequest, GetUserRequest, ListUsersRequest,
    ResetPasswordRequest, Role, User, UserState,
};
use serde::Serialize;

use super::org::PageArgs;
use crate::connection::ClientArgs;
use crate::failure::CliError;
use crate::output::{self, Table};

/// Arguments of `lrs user`.
#[derive(Debug, clap::Args)]
pub struct UserArgs {
    /// Where the suite is and where the session is kept.
    #[command(flatten)]
    pub client: ClientArgs,

    /// Print JSON instead of tables, for scripts.
    #[arg(long = "json", env = "LRS_JSON", global = true)]
    pub json: bool,

    /// What to do.
    #[command(subcommand)]
    pub action: UserAction,
}

/// The user commands.
#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Creates a user with a generated password, printed once, to be changed at first sign-in.
    Create(CreateUserArgs),
    /// Lists the users of an organisation in username order.
    List(ListUserArgs),
    /// Shows one user.
    Get {
        /// The user's id.
        user_id: String,
    },
    /// Disables a user: no more sign-ins, and their refresh tokens are revoked.
    Disable {
        /// The user's id.
        user_id: String,
    },
    /// Enables a disabled user again and clears any lock.
    Enable {
        /// The user's id.
        user_id: String,
    },
    /// Replaces a user's password with a generated one, printed once, to be changed at the
    /// next sign-in.
    ResetPassword {
        /// The user's id.
        user_id: String,
    },
}

/// Arguments of `lrs user create`.
#[derive(Debug, clap::Args)]
pub struct CreateUserArgs {
    /// Sign-in name: 3 to 64 letters, digits and `.`, `_`, `-`, `@`.
    #[arg(long = "username", env = "LRS_USER_USERNAME")]
    pub username: String,

    /// Given name (1 to 35 characters).
    #[arg(long = "given-name", env = "LRS_USER_GIVEN_NAME")]
    pub given_name: String,

    /// Family name (1 to 35 characters).
    #[arg(long = "family-name", env = "LRS_USER_FAMILY_NAME")]
    pub family_name: String,

    /// Contact email; may be empty.
    #[arg(long = "email", env = "LRS_USER_EMAIL", default_value = "")]
    pub email: String,

    /// A role to hold; repeat the flag or separate with commas for several.
    #[arg(
        long = "role",
        env = "LRS_USER_ROLES",
        value_enum,
        value_delimiter = ',',
        required = true
    )]
    pub roles: Vec<RoleArg>,

    /// The user's organisation; empty means your own (service desk: required for others).
    #[arg(
        long = "organisation",
        env = "LRS_USER_ORGANISATION",
        default_value = ""
    )]
    pub organisation_id: String,

    /// For a learner account (`--role learner`), the learner's ULN.
    #[arg(long = "uln", env = "LRS_USER_ULN", default_value = "")]
    pub uln: String,

    /// Idempotency key: repeating the command with the same key creates nothing twice.
    #[arg(long = "request-id", env = "LRS_REQUEST_ID", default_value = "")]
    pub request_id: String,
}

/// Arguments of `lrs user list`.
#[derive(Debug, clap::Args)]
pub struct ListUserArgs {
    /// The organisation whose users to list; empty means your own.
    #[arg(
        long = "organisation",
        env = "LRS_USER_ORGANISATION",
        default_value = ""
    )]
    pub organisation_id: String,

    /// Paging.
    #[command(flatten)]
    pub page: PageArgs,
}

/// The roles, as typed on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    /// Manages its own organisation's users.
    OrgAdmin,
    /// Validates, submits and follows batch files.
    BatchUser,
    /// Finds, registers and updates learners; reads PLRs.
    OnlineUser,
    /// Finds learners and reads PLRs only.
    ViewOnly,
    /// An awarding organisation's user.
    AoUser,
    /// The operator.
    ServiceDesk,
    /// A learner's own account.
    Learner,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::OrgAdmin => Role::OrgAdmin,
            RoleArg::BatchUser => Role::BatchUser,
            RoleArg::OnlineUser => Role::OnlineUser,
            RoleArg::ViewOnly => Role::ViewOnly,
            RoleArg::AoUser => Role::AoUser,
            RoleArg::ServiceDesk => Role::ServiceDesk,
            RoleArg::Learner => Role::Learner,
        }
    }
}

/// The short names of `roles` (`ORG_ADMIN`), as the suite sent them.
pub fn role_names(roles: &[i32]) -> Vec<String> {
    roles
        .iter()
        .map(|role| {
            let name = Role::try_from(*role)
                .unwrap_or(Role::Unspecified)
                .as_str_name();
            output::enum_name(name, "ROLE_")
        })
        .collect()
}

/// A user as `--json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct UserView {
    /// Their id.
    pub user_id: String,
    /// Their organisation's id; empty for learner accounts.
    pub organisation_id: String,
    /// Their sign-in name.
    pub username: String,
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// Contact email.
    pub email: String,
    /// Roles held (`ORG_ADMIN`, ...).
    pub roles: Vec<String>,
    /// `ACTIVE` or `DISABLED`.
    pub state: String,
    /// A learner account's ULN.
    pub uln: String,
    /// True until a generated password has been changed.
    pub password_change_required: bool,
    /// Until when the account is locked (RFC 3339); empty when not locked.
    pub locked_until: String,
    /// Their version.
    pub version: i64,
    /// When they last signed in (RFC 3339); empty if never.
    pub last_sign_in_time: String,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        let state = UserState::try_from(user.state)
            .unwrap_or(UserState::Unspecified)
            .as_str_name();
        Self {
            user_id: user.user_id.clone(),
            organisation_id: user.organisation_id.clone(),
            username: user.username.clone(),
            given_name: user.given_name.clone(),
            family_name: user.family_name.clone(),
            email: user.email.clone(),
            roles: role_names(&user.roles),
            state: output::enum_name(state, "USER_STATE_"),
            uln: user.uln.clone(),
            password_change_required: user.password_change_required,
            locked_until: output::timestamp(user.locked_until.as_ref()),
            version: user.version,
            last_sign_in_time: output::timestamp(user.last_sign_in_time.as_ref()),
        }
    }
}

impl UserView {
    fn details(&self) -> String {
        output::details(&[
            ("id", self.user_id.clone()),
            ("organisation", self.organisation_id.clone()),
            ("username", self.username.clone()),
            ("name", format!("{} {}", self.given_name, self.family_name)),
            ("email", self.email.clone()),
            ("roles", self.roles.join(", ")),
            ("state", self.state.clone()),
            ("uln", self.uln.clone()),
            (
                "password change",
                if self.password_change_required {
                    "required".to_owned()
                } else {
                    "not required".to_owned()
                },
            ),
            ("locked until", self.locked_until.clone()),
            ("version", self.version.to_string()),
            ("last sign-in", self.last_sign_in_time.clone()),
        ])
    }
}

/// A user and a password shown once, as `--json` prints them.
#[derive(Debug, Serialize)]
struct UserWithPassword {
    user: UserView,
    password: String,
}

/// One page (or all pages) of users as `--json` prints it.
#[derive(Debug, Serialize)]
struct UserPage {
    users: Vec<UserView>,
    next_page_token: String,
}

/// Runs `lrs user ...`.
pub async fn run(args: UserArgs) -> Result<(), CliError> {
    let signed_in = args.client.signed_in().await?;
    let mut identity = signed_in.identity();
    let json = args.json;

    match args.action {
        UserAction::Create(create) => {
            let user = User {
                organisation_id: create.organisation_id,
                username: create.username,
                given_name: create.given_name,
                family_name: create.family_name,
                email: create.email,
                roles: create
                    .roles
                    .into_iter()
                    .map(|role| Role::from(role).into())
                    .collect(),
                uln: create.uln,
                ..User::default()
            };
            let request = CreateUserRequest {
                user: Some(user),
                request_id: create.request_id,
            };
            let created = identity.create_user(request).await?.into_inner();
            let view = user_view(created.user.as_ref());
            show_with_password(view, created.initial_password, "Initial password", json)
        }
        UserAction::List(list) => {
            let mut request = ListUsersRequest {
                page_size: list.page.page_size,
                page_token: list.page.page_token.clone(),
                organisation_id: list.organisation_id,
            };
            let mut page = UserPage {
                users: Vec::new(),
                next_page_token: String::new(),
            };
            loop {
                let response = identity.list_users(request.clone()).await?.into_inner();
                page.users.extend(response.users.iter().map(UserView::from));
                page.next_page_token = response.next_page_token;
                if !list.page.all || page.next_page_token.is_empty() {
                    break;
                }
                request.page_token = page.next_page_token.clone();
            }
            show_page(&page, json)
        }
        UserAction::Get { user_id } => {
            let found = identity
                .get_user(GetUserRequest { user_id })
                .await?
                .into_inner();
            show_one(&user_view(found.user.as_ref()), json)
        }
        UserAction::Disable { user_id } => {
            let disabled = identity
                .disable_user(DisableUserRequest { user_id })
                .await?
                .into_inner();
            show_one(&user_view(disabled.user.as_ref()), json)
        }
        UserAction::Enable { user_id } => {
            let enabled = identity
                .enable_user(EnableUserRequest { user_id })
                .await?
                .into_inner();
            show_one(&user_view(enabled.user.as_ref()), json)
        }
        UserAction::ResetPassword { user_id } => {
            let request = GetUserRequest {
                user_id: user_id.clone(),
            };
            let reset = identity
                .reset_password(ResetPasswordRequest { user_id })
                .await?
                .into_inner();
            let user = identity.get_user(request).await?.into_inner();
            let view = user_view(user.user.as_ref());
            show_with_password(view, reset.temporary_password, "Temporary password", json)
        }
    }
}

fn user_view(user: Option<&User>) -> UserView {
    UserView::from(user.unwrap_or(&User::default()))
}

fn show_one(view: &UserView, json: bool) -> Result<(), CliError> {
    if json {
        output::print_json(view)
    } else {
        output::print(&view.details())
    }
}

fn show_with_password(
    user: UserView,
    password: String,
    label: &str,
    json: bool,
) -> Result<(), CliError> {
    if json {
        return output::print_json(&UserWithPassword { user, password });
    }
    let mut text = user.details();
    if password.is_empty() {
        text.push_str("\nNo password shown: this request id was used before.\n");
    } else {
        text.push_str(&format!(
            "\n{label} (shown only now; it must be changed at the next sign-in): {password}\n"
        ));
    }
    output::print(&text)
}

fn show_page(page: &UserPage, json: bool) -> Result<(), CliError> {
    if json {
        return output::print_json(page);
    }
    let mut table = Table::new(&["ID", "USERNAME", "NAME", "ROLES", "STATE"]);
    for user in &page.users {
        table.row(vec![
            user.user_id.clone(),
            user.username.clone(),
            format!("{} {}", user.given_name, user.family_name),
            user.roles.join(","),
            user.state.clone(),
        ]);
    }
    output::print(&table.render())?;
    if !page.next_page_token.is_empty() {
        eprintln!("More: --page-token {}", page.next_page_token);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_are_short() {
        let roles = [Role::OrgAdmin as i32, Role::BatchUser as i32, 99];
        assert_eq!(
            role_names(&roles),
            ["ORG_ADMIN", "BATCH_USER", "UNSPECIFIED"]
        );
    }
}
