//! `lrs org create|list|get`: organisations, managed by the service desk.

use clap::{Subcommand, ValueEnum};
use lrs_proto::identity::v1::{
    CreateOrganisationRequest, GetOrganisationRequest, ListOrganisationsRequest, LrbType,
    Organisation, OrganisationKind, OrganisationStatus,
};
use serde::Serialize;

use crate::connection::ClientArgs;
use crate::failure::CliError;
use crate::output::{self, Table};

/// Arguments of `lrs org`.
#[derive(Debug, clap::Args)]
pub struct OrgArgs {
    /// Where the suite is and where the session is kept.
    #[command(flatten)]
    pub client: ClientArgs,

    /// Print JSON instead of tables, for scripts.
    #[arg(long = "json", env = "LRS_JSON", global = true)]
    pub json: bool,

    /// What to do.
    #[command(subcommand)]
    pub action: OrgAction,
}

/// The organisation commands.
#[derive(Debug, Subcommand)]
pub enum OrgAction {
    /// Creates an organisation (service desk only).
    Create(CreateOrgArgs),
    /// Lists organisations in name order (service desk only).
    List(ListOrgArgs),
    /// Shows one organisation.
    Get {
        /// The organisation's id.
        organisation_id: String,
    },
}

/// Arguments of `lrs org create`.
#[derive(Debug, clap::Args)]
pub struct CreateOrgArgs {
    /// What kind of organisation.
    #[arg(long = "kind", env = "LRS_ORG_KIND", value_enum)]
    pub kind: OrgKindArg,

    /// Its name as users see it (1 to 255 characters).
    #[arg(long = "name", env = "LRS_ORG_NAME")]
    pub name: String,

    /// UK provider reference number, 8 letters or digits (required except for the service
    /// desk).
    #[arg(long = "ukprn", env = "LRS_ORG_UKPRN", default_value = "")]
    pub ukprn: String,

    /// The kind of learner registration body (for `--kind lrb`).
    #[arg(long = "lrb-type", env = "LRS_ORG_LRB_TYPE", value_enum)]
    pub lrb_type: Option<LrbTypeArg>,

    /// LRS organisation reference, 6 letters or digits; assigned by the suite when empty.
    #[arg(long = "reference", env = "LRS_ORG_REFERENCE", default_value = "")]
    pub reference: String,

    /// Idempotency key: repeating the command with the same key creates nothing twice.
    #[arg(long = "request-id", env = "LRS_REQUEST_ID", default_value = "")]
    pub request_id: String,
}

/// Arguments of `lrs org list`.
#[derive(Debug, clap::Args)]
pub struct ListOrgArgs {
    /// Only organisations of this kind.
    #[arg(long = "kind", env = "LRS_ORG_KIND", value_enum)]
    pub kind: Option<OrgKindArg>,

    /// Only the organisation with this UKPRN.
    #[arg(long = "ukprn", env = "LRS_ORG_UKPRN", default_value = "")]
    pub ukprn: String,

    /// Paging: how many per page (1 to 1000; 0 means the suite's default, 50) and where to
    /// start.
    #[command(flatten)]
    pub page: PageArgs,
}

/// Paging flags shared by the list commands.
#[derive(Debug, Clone, clap::Args)]
pub struct PageArgs {
    /// Most items per page (1 to 1000); 0 means the suite's default (50).
    #[arg(long = "page-size", env = "LRS_PAGE_SIZE", default_value_t = 0)]
    pub page_size: i32,

    /// The page to start from, as printed after the previous page.
    #[arg(long = "page-token", env = "LRS_PAGE_TOKEN", default_value = "")]
    pub page_token: String,

    /// Fetch every page, not only the first.
    #[arg(long = "all", env = "LRS_ALL_PAGES")]
    pub all: bool,
}

/// The kinds of organisation, as typed on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OrgKindArg {
    /// A learner registration body (school, college, HE provider, local authority).
    Lrb,
    /// An awarding organisation.
    Ao,
    /// The service desk.
    ServiceDesk,
}

impl From<OrgKindArg> for OrganisationKind {
    fn from(kind: OrgKindArg) -> Self {
        match kind {
            OrgKindArg::Lrb => OrganisationKind::LearnerRegistrationBody,
            OrgKindArg::Ao => OrganisationKind::AwardingOrganisation,
            OrgKindArg::ServiceDesk => OrganisationKind::ServiceDesk,
        }
    }
}

/// The kinds of learner registration body, as typed on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LrbTypeArg {
    /// A school or academy.
    School,
    /// A further-education college or training provider.
    College,
    /// A local authority.
    LocalAuthority,
    /// A higher-education provider.
    HigherEducation,
    /// Any other registration body.
    Other,
}

impl From<LrbTypeArg> for LrbType {
    fn from(lrb_type: LrbTypeArg) -> Self {
        match lrb_type {
            LrbTypeArg::School => LrbType::School,
            LrbTypeArg::College => LrbType::College,
            LrbTypeArg::LocalAuthority => LrbType::LocalAuthority,
            LrbTypeArg::HigherEducation => LrbType::HigherEducation,
            LrbTypeArg::Other => LrbType::Other,
        }
    }
}

/// An organisation as `--json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct OrganisationView {
    /// Its id.
    pub organisation_id: String,
    /// `LEARNER_REGISTRATION_BODY`, `AWARDING_ORGANISATION` or `SERVICE_DESK`.
    pub kind: String,
    /// The kind of registration body, empty for others.
    pub lrb_type: String,
    /// Its name.
    pub display_name: String,
    /// Its UKPRN.
    pub ukprn: String,
    /// Its LRS organisation reference.
    pub organisation_reference: String,
    /// `ACTIVE`, `SUSPENDED` or `CLOSED`.
    pub status: String,
    /// Its version.
    pub version: i64,
    /// When it was created (RFC 3339).
    pub create_time: String,
    /// When it last changed (RFC 3339).
    pub update_time: String,
}

impl From<&Organisation> for OrganisationView {
    fn from(organisation: &Organisation) -> Self {
        let kind = OrganisationKind::try_from(organisation.kind)
            .unwrap_or(OrganisationKind::Unspecified)
            .as_str_name();
        let lrb_type = match LrbType::try_from(organisation.lrb_type) {
            Ok(LrbType::Unspecified) | Err(_) => String::new(),
            Ok(lrb_type) => output::enum_name(lrb_type.as_str_name(), "LRB_TYPE_"),
        };
        let status = OrganisationStatus::try_from(organisation.status)
            .unwrap_or(OrganisationStatus::Unspecified)
            .as_str_name();
        Self {
            organisation_id: organisation.organisation_id.clone(),
            kind: output::enum_name(kind, "ORGANISATION_KIND_"),
            lrb_type,
            display_name: organisation.display_name.clone(),
            ukprn: organisation.ukprn.clone(),
            organisation_reference: organisation.organisation_reference.clone(),
            status: output::enum_name(status, "ORGANISATION_STATUS_"),
            version: organisation.version,
            create_time: output::timestamp(organisation.create_time.as_ref()),
            update_time: output::timestamp(organisation.update_time.as_ref()),
        }
    }
}

impl OrganisationView {
    fn details(&self) -> String {
        output::details(&[
            ("id", self.organisation_id.clone()),
            ("kind", self.kind.clone()),
            ("lrb type", self.lrb_type.clone()),
            ("name", self.display_name.clone()),
            ("ukprn", self.ukprn.clone()),
            ("reference", self.organisation_reference.clone()),
            ("status", self.status.clone()),
            ("version", self.version.to_string()),
            ("created", self.create_time.clone()),
            ("updated", self.update_time.clone()),
        ])
    }
}

/// One page (or all pages) of organisations as `--json` prints it.
#[derive(Debug, Serialize)]
struct OrganisationPage {
    organisations: Vec<OrganisationView>,
    next_page_token: String,
}

/// Runs `lrs org ...`.
pub async fn run(args: OrgArgs) -> Result<(), CliError> {
    let signed_in = args.client.signed_in().await?;
    let mut identity = signed_in.identity();

    match args.action {
        OrgAction::Create(create) => {
            let organisation = Organisation {
                kind: OrganisationKind::from(create.kind).into(),
                lrb_type: create
                    .lrb_type
                    .map(LrbType::from)
                    .unwrap_or_default()
                    .into(),
                display_name: create.name,
                ukprn: create.ukprn,
                organisation_reference: create.reference,
                ..Organisation::default()
            };
            let request = CreateOrganisationRequest {
                organisation: Some(organisation),
                request_id: create.request_id,
            };
            let created = identity.create_organisation(request).await?.into_inner();
            show_one(created.organisation.as_ref(), args.json)
        }
        OrgAction::List(list) => {
            let mut request = ListOrganisationsRequest {
                page_size: list.page.page_size,
                page_token: list.page.page_token.clone(),
                kind: list
                    .kind
                    .map(OrganisationKind::from)
                    .unwrap_or_default()
                    .into(),
                ukprn: list.ukprn,
            };
            let mut page = OrganisationPage {
                organisations: Vec::new(),
                next_page_token: String::new(),
            };
            loop {
                let response = identity
                    .list_organisations(request.clone())
                    .await?
                    .into_inner();
                page.organisations
                    .extend(response.organisations.iter().map(OrganisationView::from));
                page.next_page_token = response.next_page_token;
                if !list.page.all || page.next_page_token.is_empty() {
                    break;
                }
                request.page_token = page.next_page_token.clone();
            }
            show_page(&page, args.json)
        }
        OrgAction::Get { organisation_id } => {
            let request = GetOrganisationRequest { organisation_id };
            let found = identity.get_organisation(request).await?.into_inner();
            show_one(found.organisation.as_ref(), args.json)
        }
    }
}

fn show_one(organisation: Option<&Organisation>, json: bool) -> Result<(), CliError> {
    let view = OrganisationView::from(organisation.unwrap_or(&Organisation::default()));
    if json {
        output::print_json(&view)
    } else {
        output::print(&view.details())
    }
}

fn show_page(page: &OrganisationPage, json: bool) -> Result<(), CliError> {
    if json {
        return output::print_json(page);
    }
    let mut table = Table::new(&["ID", "KIND", "NAME", "UKPRN", "REFERENCE", "STATUS"]);
    for organisation in &page.organisations {
        table.row(vec![
            organisation.organisation_id.clone(),
            organisation.kind.clone(),
            organisation.display_name.clone(),
            organisation.ukprn.clone(),
            organisation.organisation_reference.clone(),
            organisation.status.clone(),
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
    fn views_use_short_enum_names() {
        let organisation = Organisation {
            organisation_id: "o-1".into(),
            kind: OrganisationKind::LearnerRegistrationBody.into(),
            lrb_type: LrbType::College.into(),
            display_name: "Northern College".into(),
            ukprn: "10000001".into(),
            organisation_reference: "ABC123".into(),
            status: OrganisationStatus::Active.into(),
            version: 1,
            ..Organisation::default()
        };

        let view = OrganisationView::from(&organisation);

        assert_eq!(view.kind, "LEARNER_REGISTRATION_BODY");
        assert_eq!(view.lrb_type, "COLLEGE");
        assert_eq!(view.status, "ACTIVE");
    }
}
