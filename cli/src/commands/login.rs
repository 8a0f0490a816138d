//! `lrs login` and `lrs logout`.

use lrs_proto::identity::v1::identity_service_client::IdentityServiceClient;
use lrs_proto::identity::v1::{ChangePasswordRequest, SignInRequest, SignOutRequest};
use tonic::service::interceptor::InterceptedService;

use crate::connection::{Bearer, ClientArgs};
use crate::failure::{self, CliError};
use crate::output;
use crate::password::{self, PASSWORD_ENV};
use crate::session::{self, Session};

/// Arguments of `lrs login`.
///
/// The password comes from `LRS_PASSWORD`, else the terminal (not echoed), else the first
/// line of standard input. When the suite requires a new password (a generated or reset one),
/// it comes from `LRS_NEW_PASSWORD`, else the terminal (typed twice), else the next line.
#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// Where the suite is and where the session is kept.
    #[command(flatten)]
    pub client: ClientArgs,

    /// The username; asked for when not given.
    #[arg(long = "username", short = 'u', env = "LRS_USERNAME")]
    pub username: Option<String>,
}

/// Arguments of `lrs logout`.
#[derive(Debug, clap::Args)]
pub struct LogoutArgs {
    /// Where the suite is and where the session is kept.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Signs in, changes a generated password when the suite requires it, and saves the session.
pub async fn login(args: LoginArgs) -> Result<(), CliError> {
    // The suite first: a bad endpoint or a suite that is down is said before any password
    // is asked for.
    let channel = args.client.channel().await?;
    let username = match args.username.filter(|name| !name.trim().is_empty()) {
        Some(username) => username,
        None => password::read_line("Username: ", "username")?,
    };
    let current_password = password::read_secret("Password: ", PASSWORD_ENV, "password")?;

    let request = SignInRequest {
        username: username.clone(),
        password: current_password.clone(),
    };
    let signed_in = IdentityServiceClient::new(channel.clone())
        .sign_in(request)
        .await?
        .into_inner();
    let user = signed_in.user.unwrap_or_default();

    let (access_token, refresh_token, expires_in) = if signed_in.password_change_required {
        eprintln!("The password of {username} must be changed before anything else.");
        let new_password = password::read_new_password()?;
        let bearer = Bearer::new(&signed_in.access_token)?;
        let request = ChangePasswordRequest {
            current_password,
            new_password,
        };
        let changed = IdentityServiceClient::new(InterceptedService::new(channel, bearer))
            .change_password(request)
            .await?
            .into_inner();
        eprintln!("Password changed.");
        (
            changed.access_token,
            changed.refresh_token,
            changed.expires_in,
        )
    } else {
        (
            signed_in.access_token,
            signed_in.refresh_token,
            signed_in.expires_in,
        )
    };

    let session = Session {
        endpoint: args.client.endpoint().to_owned(),
        username: user.username.clone(),
        user_id: user.user_id.clone(),
        access_token,
        refresh_token,
        expires_at: session::now() + expires_in,
    };
    let path = args.client.session_path()?;
    session.save(&path)?;

    let roles = super::user::role_names(&user.roles).join(", ");
    output::print(&format!(
        "Signed in to {} as {} ({roles}).\nThe session is kept in {}.\n",
        session.endpoint,
        session.username,
        path.display()
    ))
}

/// Revokes the session at the suite (when it can be reached) and removes the session file.
pub async fn logout(args: LogoutArgs) -> Result<(), CliError> {
    let path = args.client.session_path()?;
    let Some(saved) = Session::load(&path)? else {
        return output::print("Not signed in.\n");
    };

    let at_saved_endpoint = ClientArgs {
        endpoint: saved.endpoint.clone(),
        session_file: Some(path.clone()),
    };
    if let Err(error) = sign_out(&at_saved_endpoint).await {
        eprintln!("warning: the suite did not revoke the session: {error}");
        if let CliError::Rpc(status) = &error {
            for line in failure::status_lines(status) {
                eprintln!("  {line}");
            }
        }
    }

    Session::remove(&path)?;
    output::print(&format!("Signed out of {}.\n", saved.endpoint))
}

async fn sign_out(client: &ClientArgs) -> Result<(), CliError> {
    let signed_in = client.signed_in().await?;
    let request = SignOutRequest {
        refresh_token: signed_in.session().refresh_token.clone(),
    };
    signed_in.identity().sign_out(request).await?;
    Ok(())
}
