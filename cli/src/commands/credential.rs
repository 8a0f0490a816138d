//! `lrs credential create|list|revoke`: machine credentials, which `IssueClientToken`
//! exchanges for an access token. The service desk creates those of the suite's own services
//! (each a Kubernetes secret, such as batch's `LRS_CLIENT_ID` and `LRS_CLIENT_SECRET`);
//! organisation admins create their integrators' own.

use clap::Subcommand;
use lrs_proto::identity::v1::{
    ClientCredential, CreateClientCredentialRequest, ListClientCredentialsRequest,
    RevokeClientCredentialRequest, Role,
};
use serde::Serialize;

use super::org::PageArgs;
use super::user::{RoleArg, role_names};
use crate::connection::ClientArgs;
use crate::failure::CliError;
use crate::output::{self, Table};

/// Arguments of `lrs credential`.
#[derive(Debug, clap::Args)]
pub struct CredentialArgs {
    /// Where the suite is and where the session is kept.
    #[command(flatten)]
    pub client: ClientArgs,

    /// Print JSON instead of tables, for scripts.
    #[arg(long = "json", env = "LRS_JSON", global = true)]
    pub json: bool,

    /// What to do.
    #[command(subcommand)]
    pub action: CredentialAction,
}

/// The credential commands.
#[derive(Debug, Subcommand)]
pub enum CredentialAction {
    /// Creates a credential for one of the suite's services (`--service`, service desk only)
    /// or for an integrator's system (`--role`); prints its secret once.
    Create(CreateCredentialArgs),
    /// Lists an organisation's credentials, newest first (never their secrets).
    List(ListCredentialArgs),
    /// Revokes a credential: no new tokens are issued for it; tokens already issued run out
    /// within their lifetime.
    Revoke {
        /// The credential's client id.
        client_id: String,
    },
}

/// Arguments of `lrs credential create`.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("holder").required(true).args(["service", "roles"]))]
pub struct CreateCredentialArgs {
    /// The suite's service the credential is for (`batch`): 1 to 32 lowercase letters, digits
    /// or `-`. Its tokens carry ROLE_SERVICE only. A service has one credential in force at
    /// a time: revoke the old one before creating its replacement.
    #[arg(long = "service", env = "LRS_CREDENTIAL_SERVICE")]
    pub service: Option<String>,

    /// For an integrator's credential, a role its tokens carry (those the organisation's kind
    /// allows); repeat the flag or separate with commas for several.
    #[arg(
        long = "role",
        env = "LRS_CREDENTIAL_ROLES",
        value_enum,
        value_delimiter = ','
    )]
    pub roles: Vec<RoleArg>,

    /// What the credential is for (1 to 255 characters); with `--service`, "the <service>
    /// service" when not given.
    #[arg(
        long = "display-name",
        env = "LRS_CREDENTIAL_DISPLAY_NAME",
        required_unless_present = "service"
    )]
    pub display_name: Option<String>,

    /// The organisation it acts for; empty means your own (the service desk's, for service
    /// credentials).
    #[arg(
        long = "organisation",
        env = "LRS_CREDENTIAL_ORGANISATION",
        default_value = ""
    )]
    pub organisation_id: String,

    /// Idempotency key: repeating the command with the same key creates nothing twice (and
    /// shows no secret the second time).
    #[arg(long = "request-id", env = "LRS_REQUEST_ID", default_value = "")]
    pub request_id: String,
}

/// Arguments of `lrs credential list`.
#[derive(Debug, clap::Args)]
pub struct ListCredentialArgs {
    /// The organisation whose credentials to list; empty means your own.
    #[arg(
        long = "organisation",
        env = "LRS_CREDENTIAL_ORGANISATION",
        default_value = ""
    )]
    pub organisation_id: String,

    /// Paging.
    #[command(flatten)]
    pub page: PageArgs,
}

/// A credential as `--json` prints it (never with its secret).
#[derive(Debug, Clone, Serialize)]
pub struct CredentialView {
    /// The public client id.
    pub client_id: String,
    /// The organisation it acts for.
    pub organisation_id: String,
    /// What it is for.
    pub display_name: String,
    /// Roles its tokens carry (`SERVICE`, `BATCH_USER`, ...).
    pub roles: Vec<String>,
    /// The suite's service it is for; empty for integrators.
    pub service: String,
    /// When it was created (RFC 3339).
    pub create_time: String,
    /// When it was revoked (RFC 3339); empty while in force.
    pub revoke_time: String,
}

impl From<&ClientCredential> for CredentialView {
    fn from(credential: &ClientCredential) -> Self {
        Self {
            client_id: credential.client_id.clone(),
            organisation_id: credential.organisation_id.clone(),
            display_name: credential.display_name.clone(),
            roles: role_names(&credential.roles),
            service: credential.service.clone(),
            create_time: output::timestamp(credential.create_time.as_ref()),
            revoke_time: output::timestamp(credential.revoke_time.as_ref()),
        }
    }
}

impl CredentialView {
    fn details(&self) -> String {
        output::details(&[
            ("client id", self.client_id.clone()),
            ("organisation", self.organisation_id.clone()),
            ("name", self.display_name.clone()),
            ("roles", self.roles.join(", ")),
            ("service", self.service.clone()),
            ("created", self.create_time.clone()),
            ("revoked", self.revoke_time.clone()),
        ])
    }
}

/// A new credential and its secret, shown once, as `--json` prints them.
#[derive(Debug, Serialize)]
struct CredentialWithSecret {
    credential: CredentialView,
    client_secret: String,
}

/// One page (or all pages) of credentials as `--json` prints it.
#[derive(Debug, Serialize)]
struct CredentialPage {
    credentials: Vec<CredentialView>,
    next_page_token: String,
}

/// Runs `lrs credential ...`.
pub async fn run(args: CredentialArgs) -> Result<(), CliError> {
    let signed_in = args.client.signed_in().await?;
    let mut identity = signed_in.identity();
    let json = args.json;

    match args.action {
        CredentialAction::Create(create) => {
            let request = create_request(create);
            let created = identity
                .create_client_credential(request)
                .await?
                .into_inner();
            let view = credential_view(created.credential.as_ref());
            show_with_secret(view, created.client_secret, json)
        }
        CredentialAction::List(list) => {
            let mut request = ListClientCredentialsRequest {
                page_size: list.page.page_size,
                page_token: list.page.page_token.clone(),
                organisation_id: list.organisation_id,
            };
            let mut page = CredentialPage {
                credentials: Vec::new(),
                next_page_token: String::new(),
            };
            loop {
                let response = identity
                    .list_client_credentials(request.clone())
                    .await?
                    .into_inner();
                let credentials = response.credentials.iter().map(CredentialView::from);
                page.credentials.extend(credentials);
                page.next_page_token = response.next_page_token;
                if !list.page.all || page.next_page_token.is_empty() {
                    break;
                }
                request.page_token = page.next_page_token.clone();
            }
            show_page(&page, json)
        }
        CredentialAction::Revoke { client_id } => {
            let revoked = identity
                .revoke_client_credential(RevokeClientCredentialRequest { client_id })
                .await?
                .into_inner();
            show_one(&credential_view(revoked.credential.as_ref()), json)
        }
    }
}

/// The request for `lrs credential create`: a service credential holds ROLE_SERVICE only.
fn create_request(create: CreateCredentialArgs) -> CreateClientCredentialRequest {
    let CreateCredentialArgs {
        service,
        roles,
        display_name,
        organisation_id,
        request_id,
    } = create;
    let (service, roles) = match service {
        Some(service) => (service, vec![Role::Service.into()]),
        None => {
            let roles = roles.into_iter().map(|role| Role::from(role).into());
            (String::new(), roles.collect())
        }
    };
    let display_name = display_name.unwrap_or_else(|| format!("the {service} service"));
    let credential = ClientCredential {
        organisation_id,
        display_name,
        roles,
        service,
        ..ClientCredential::default()
    };
    CreateClientCredentialRequest {
        credential: Some(credential),
        request_id,
    }
}

fn credential_view(credential: Option<&ClientCredential>) -> CredentialView {
    CredentialView::from(credential.unwrap_or(&ClientCredential::default()))
}

fn show_one(view: &CredentialView, json: bool) -> Result<(), CliError> {
    if json {
        output::print_json(view)
    } else {
        output::print(&view.details())
    }
}

fn show_with_secret(
    credential: CredentialView,
    client_secret: String,
    json: bool,
) -> Result<(), CliError> {
    if json {
        return output::print_json(&CredentialWithSecret {
            credential,
            client_secret,
        });
    }
    let mut text = credential.details();
    if client_secret.is_empty() {
        text.push_str("\nNo secret shown: this request id was used before.\n");
    } else {
        text.push_str(&format!(
            "\nClient secret (shown only now; the suite keeps only its hash, so store it \
             safely, for example in a Kubernetes secret): {client_secret}\n"
        ));
    }
    if !credential.service.is_empty() && !client_secret.is_empty() {
        text.push_str(&format!(
            "\nFor `lrs serve {}`: LRS_CLIENT_ID={} LRS_CLIENT_SECRET=<the secret above>\n",
            credential.service, credential.client_id
        ));
    }
    output::print(&text)
}

fn show_page(page: &CredentialPage, json: bool) -> Result<(), CliError> {
    if json {
        return output::print_json(page);
    }
    let mut table = Table::new(&[
        "CLIENT ID",
        "NAME",
        "SERVICE",
        "ROLES",
        "CREATED",
        "REVOKED",
    ]);
    for credential in &page.credentials {
        table.row(vec![
            credential.client_id.clone(),
            credential.display_name.clone(),
            credential.service.clone(),
            credential.roles.join(","),
            credential.create_time.clone(),
            credential.revoke_time.clone(),
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
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Command {
        #[command(subcommand)]
        action: CredentialAction,
    }

    fn create(args: &[&str]) -> Result<CreateClientCredentialRequest, clap::Error> {
        let args = ["lrs", "create"].into_iter().chain(args.iter().copied());
        match Command::try_parse_from(args)?.action {
            CredentialAction::Create(create) => Ok(create_request(create)),
            other => panic!("parsed as create: {other:?}"),
        }
    }

    #[test]
    fn a_service_credential_holds_the_service_role_only() {
        let request = create(&["--service", "batch"]).expect("parses");
        let credential = request.credential.expect("a credential");
        assert_eq!(credential.service, "batch");
        assert_eq!(credential.roles, [Role::Service as i32]);
        assert_eq!(credential.display_name, "the batch service");
    }

    #[test]
    fn an_integrator_credential_takes_roles_and_a_name() {
        let request =
            create(&["--role", "batch-user,online-user", "--display-name", "MIS"]).expect("parses");
        let credential = request.credential.expect("a credential");
        assert_eq!(credential.service, "");
        assert_eq!(
            credential.roles,
            [Role::BatchUser as i32, Role::OnlineUser as i32]
        );
        assert_eq!(credential.display_name, "MIS");
    }

    #[test]
    fn service_or_roles_is_required_and_not_both() {
        assert!(create(&["--display-name", "MIS"]).is_err());
        assert!(create(&["--role", "batch-user"]).is_err(), "needs a name");
        assert!(create(&["--service", "batch", "--role", "batch-user"]).is_err());
    }
}
