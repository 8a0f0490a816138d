//! `lrs learner find|register|get`: the learner register, as an online user of a registration
//! body uses it.

use chrono::{Datelike, NaiveDate};
use clap::{Subcommand, ValueEnum};
use lrs_proto::learner::v1::learner_service_client::LearnerServiceClient;
use lrs_proto::learner::v1::{
    DemographicSearch, FindLearnersByDemographicsRequest, FindType, GetLearnerRequest, Learner,
    LearnerStatus, MatchCandidate, MatchOutcome, RegisterLearnerRequest, VerificationType,
};
use lrs_proto::types::v1::{AbilityToShare, Date, Gender};
use serde::Serialize;

use crate::connection::ClientArgs;
use crate::failure::CliError;
use crate::output::{self, Table};

/// Arguments of `lrs learner`.
#[derive(Debug, clap::Args)]
pub struct LearnerArgs {
    /// Where the suite is and where the session is kept.
    #[command(flatten)]
    pub client: ClientArgs,

    /// Print JSON instead of text, for scripts.
    #[arg(long = "json", env = "LRS_JSON", global = true)]
    pub json: bool,

    /// What to do.
    #[command(subcommand)]
    pub action: LearnerAction,
}

/// The learner commands.
#[derive(Debug, Subcommand)]
pub enum LearnerAction {
    /// Finds learners by the five keys (and optional refiners); the search also permits a
    /// registration of these keys for 30 minutes.
    Find(FindArgs),
    /// Registers a learner after a search that found no exact match; prints the new ULN.
    Register(RegisterArgs),
    /// Gets a learner by ULN and names.
    Get(GetArgs),
}

/// The five keys of a learner.
#[derive(Debug, Clone, clap::Args)]
pub struct KeyArgs {
    /// Given name.
    #[arg(long = "given-name")]
    pub given_name: String,
    /// Family name.
    #[arg(long = "family-name")]
    pub family_name: String,
    /// Date of birth, YYYY-MM-DD.
    #[arg(long = "date-of-birth", value_parser = parse_date)]
    pub date_of_birth: NaiveDate,
    /// Gender: 0 not known, 1 male, 2 female, 9 not specified.
    #[arg(long = "gender", value_enum)]
    pub gender: GenderArg,
    /// Last known postcode (UK or BFPO).
    #[arg(long = "postcode")]
    pub postcode: String,
}

/// Arguments of `lrs learner find`.
#[derive(Debug, clap::Args)]
pub struct FindArgs {
    /// The five keys.
    #[command(flatten)]
    pub keys: KeyArgs,
    /// Refiner: previous family name.
    #[arg(long = "previous-family-name", default_value = "")]
    pub previous_family_name: String,
    /// Refiner: school at 16.
    #[arg(long = "school-at-16", default_value = "")]
    pub school_at_16: String,
    /// Refiner: place of birth.
    #[arg(long = "place-of-birth", default_value = "")]
    pub place_of_birth: String,
    /// Refiner: email address.
    #[arg(long = "email", default_value = "")]
    pub email: String,
}

/// Arguments of `lrs learner register`.
#[derive(Debug, clap::Args)]
pub struct RegisterArgs {
    /// The five keys.
    #[command(flatten)]
    pub keys: KeyArgs,
    /// The identity evidence checked: 0 to 7, or 999 (other, with --verification-description).
    #[arg(long = "verification-type", value_parser = parse_verification)]
    pub verification_type: VerificationType,
    /// What the other evidence was (with --verification-type 999).
    #[arg(long = "verification-description", default_value = "")]
    pub verification_description: String,
    /// Ability to share: whether the learner has seen the privacy notice (0 not seen, 1 seen).
    #[arg(long = "ability-to-share", value_enum)]
    pub ability_to_share: AbilityArg,
    /// Title.
    #[arg(long = "title", default_value = "")]
    pub title: String,
    /// Middle names.
    #[arg(long = "middle-names", default_value = "")]
    pub middle_names: String,
    /// Email address.
    #[arg(long = "email", default_value = "")]
    pub email: String,
    /// Unique Pupil Number.
    #[arg(long = "upn", default_value = "")]
    pub upn: String,
    /// Unique Candidate Identifier.
    #[arg(long = "uci", default_value = "")]
    pub uci: String,
    /// Idempotency key: repeating the command with the same key registers nobody twice.
    #[arg(long = "request-id", env = "LRS_REQUEST_ID", default_value = "")]
    pub request_id: String,
}

/// Arguments of `lrs learner get`.
#[derive(Debug, clap::Args)]
pub struct GetArgs {
    /// The ULN.
    pub uln: String,
    /// The learner's given name.
    #[arg(long = "given-name")]
    pub given_name: String,
    /// The learner's family name.
    #[arg(long = "family-name")]
    pub family_name: String,
    /// Check only: the outcome and ULN, without details.
    #[arg(long = "check")]
    pub check: bool,
}

/// Genders as typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GenderArg {
    /// Not known.
    #[value(name = "0")]
    NotKnown,
    /// Male.
    #[value(name = "1")]
    Male,
    /// Female.
    #[value(name = "2")]
    Female,
    /// Not specified.
    #[value(name = "9")]
    NotSpecified,
}

impl From<GenderArg> for Gender {
    fn from(gender: GenderArg) -> Self {
        match gender {
            GenderArg::NotKnown => Gender::NotKnown,
            GenderArg::Male => Gender::Male,
            GenderArg::Female => Gender::Female,
            GenderArg::NotSpecified => Gender::NotSpecified,
        }
    }
}

/// Ability to share as typed (new data takes 0 or 1 only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AbilityArg {
    /// The privacy notice has not been given.
    #[value(name = "0")]
    NoticeNotSeen,
    /// The learner has seen the privacy notice.
    #[value(name = "1")]
    NoticeSeen,
}

fn parse_date(text: &str) -> Result<NaiveDate, String> {
    lrs_fields::date::parse_date(text).map_err(|error| error.to_string())
}

fn parse_verification(text: &str) -> Result<VerificationType, String> {
    let value = match text {
        "0" => VerificationType::NoneProvided,
        "1" => VerificationType::RelationshipWithSchool,
        "2" => VerificationType::Passport,
        "3" => VerificationType::DrivingLicence,
        "4" => VerificationType::IdCard,
        "5" => VerificationType::NationalInsuranceCard,
        "6" => VerificationType::CertificateOfEntitlementToFunding,
        "7" => VerificationType::BankCard,
        "999" => VerificationType::Other,
        _ => return Err("use 0 to 7, or 999 (other)".into()),
    };
    Ok(value)
}

fn date(value: NaiveDate) -> Date {
    Date {
        year: value.year(),
        month: value.month() as i32,
        day: value.day() as i32,
    }
}

fn date_text(value: Option<&Date>) -> String {
    value
        .map(|d| format!("{:04}-{:02}-{:02}", d.year, d.month, d.day))
        .unwrap_or_default()
}

fn short(proto_name: &str, prefix: &str) -> String {
    output::enum_name(proto_name, prefix)
}

/// A learner as printed.
#[derive(Debug, Clone, Serialize)]
pub struct LearnerView {
    /// The ULN.
    pub uln: String,
    /// `ACTIVE` or `LINKED`.
    pub status: String,
    /// The master's ULN, when linked.
    pub master_uln: String,
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// Date of birth, YYYY-MM-DD.
    pub date_of_birth: String,
    /// Gender.
    pub gender: String,
    /// Postcode.
    pub postcode: String,
    /// ULNs linked to it.
    pub linked_ulns: Vec<String>,
    /// Version, to pass back on update.
    pub version: i64,
}

impl From<&Learner> for LearnerView {
    fn from(learner: &Learner) -> Self {
        let status = LearnerStatus::try_from(learner.status).unwrap_or(LearnerStatus::Unspecified);
        let gender = Gender::try_from(learner.gender).unwrap_or(Gender::Unspecified);
        Self {
            uln: learner.uln.clone(),
            status: short(status.as_str_name(), "LEARNER_STATUS_"),
            master_uln: learner.master_uln.clone(),
            given_name: learner.given_name.clone(),
            family_name: learner.family_name.clone(),
            date_of_birth: date_text(learner.date_of_birth.as_ref()),
            gender: short(gender.as_str_name(), "GENDER_"),
            postcode: learner.postcode.clone(),
            linked_ulns: learner.linked_ulns.clone(),
            version: learner.version,
        }
    }
}

/// A search answer as printed.
#[derive(Debug, Serialize)]
struct FoundView {
    outcome: String,
    response_code: String,
    candidates: Vec<CandidateView>,
}

#[derive(Debug, Serialize)]
struct CandidateView {
    score: i32,
    master_substituted: bool,
    matched_uln: String,
    learner: Option<LearnerView>,
}

impl From<&MatchCandidate> for CandidateView {
    fn from(candidate: &MatchCandidate) -> Self {
        Self {
            score: candidate.score,
            master_substituted: candidate.master_substituted,
            matched_uln: candidate.matched_uln.clone(),
            learner: candidate.learner.as_ref().map(LearnerView::from),
        }
    }
}

fn outcome_name(value: i32) -> String {
    let outcome = MatchOutcome::try_from(value).unwrap_or(MatchOutcome::Unspecified);
    short(outcome.as_str_name(), "MATCH_OUTCOME_")
}

fn show_found(found: &FoundView, json: bool) -> Result<(), CliError> {
    if json {
        return output::print_json(found);
    }
    let mut text = format!("{} ({})\n", found.outcome, found.response_code);
    if !found.candidates.is_empty() {
        let mut table = Table::new(&[
            "SCORE", "ULN", "GIVEN", "FAMILY", "BORN", "GENDER", "POSTCODE", "VIA",
        ]);
        for candidate in &found.candidates {
            let learner = candidate.learner.clone();
            let learner = learner.as_ref();
            table.row(vec![
                candidate.score.to_string(),
                learner.map(|l| l.uln.clone()).unwrap_or_default(),
                learner.map(|l| l.given_name.clone()).unwrap_or_default(),
                learner.map(|l| l.family_name.clone()).unwrap_or_default(),
                learner.map(|l| l.date_of_birth.clone()).unwrap_or_default(),
                learner.map(|l| l.gender.clone()).unwrap_or_default(),
                learner.map(|l| l.postcode.clone()).unwrap_or_default(),
                if candidate.master_substituted {
                    format!("linked {}", candidate.matched_uln)
                } else {
                    String::new()
                },
            ]);
        }
        text.push_str(&table.render());
    }
    output::print(&text)
}

fn show_learner(learner: &LearnerView, json: bool) -> Result<(), CliError> {
    if json {
        return output::print_json(learner);
    }
    output::print(&output::details(&[
        ("uln", learner.uln.clone()),
        ("status", learner.status.clone()),
        ("master uln", learner.master_uln.clone()),
        ("given name", learner.given_name.clone()),
        ("family name", learner.family_name.clone()),
        ("date of birth", learner.date_of_birth.clone()),
        ("gender", learner.gender.clone()),
        ("postcode", learner.postcode.clone()),
        ("linked ulns", learner.linked_ulns.join(" ")),
        ("version", learner.version.to_string()),
    ]))
}

/// A `lrs learner get` answer as printed.
#[derive(Debug, Serialize)]
struct GotView {
    outcome: String,
    response_code: String,
    found_uln: String,
    master_substituted: bool,
    learner: Option<LearnerView>,
}

/// Runs `lrs learner ...`.
pub async fn run(args: LearnerArgs) -> Result<(), CliError> {
    let signed_in = args.client.signed_in().await?;
    let mut learners = LearnerServiceClient::new(signed_in.channel());

    match args.action {
        LearnerAction::Find(find) => {
            let FindArgs {
                keys,
                previous_family_name,
                school_at_16,
                place_of_birth,
                email,
            } = find;
            let search = DemographicSearch {
                given_name: keys.given_name,
                family_name: keys.family_name,
                date_of_birth: Some(date(keys.date_of_birth)),
                gender: Gender::from(keys.gender).into(),
                postcode: keys.postcode,
                previous_family_name,
                school_at_16,
                place_of_birth,
                email_address: email,
            };
            let request = FindLearnersByDemographicsRequest {
                search: Some(search),
            };
            let found = learners
                .find_learners_by_demographics(request)
                .await?
                .into_inner();
            let view = FoundView {
                outcome: outcome_name(found.outcome),
                response_code: found.response_code,
                candidates: found.candidates.iter().map(CandidateView::from).collect(),
            };
            show_found(&view, args.json)
        }
        LearnerAction::Register(register) => {
            let learner = Learner {
                title: register.title,
                given_name: register.keys.given_name,
                middle_names: register.middle_names,
                family_name: register.keys.family_name,
                postcode: register.keys.postcode,
                date_of_birth: Some(date(register.keys.date_of_birth)),
                gender: Gender::from(register.keys.gender).into(),
                email_address: register.email,
                verification_type: register.verification_type.into(),
                other_verification_description: register.verification_description,
                ability_to_share: match register.ability_to_share {
                    AbilityArg::NoticeNotSeen => AbilityToShare::NoticeNotSeen,
                    AbilityArg::NoticeSeen => AbilityToShare::NoticeSeen,
                }
                .into(),
                upn: register.upn,
                uci: register.uci,
                ..Learner::default()
            };
            let request = RegisterLearnerRequest {
                learner: Some(learner),
                request_id: register.request_id,
            };
            let registered = learners.register_learner(request).await?.into_inner();
            let view = LearnerView::from(&registered.learner.unwrap_or_default());
            show_learner(&view, args.json)
        }
        LearnerAction::Get(get) => {
            let request = GetLearnerRequest {
                uln: get.uln,
                given_name: get.given_name,
                family_name: get.family_name,
                find_type: if get.check {
                    FindType::Check
                } else {
                    FindType::Full
                }
                .into(),
            };
            let got = learners.get_learner(request).await?.into_inner();
            let view = GotView {
                outcome: outcome_name(got.outcome),
                response_code: got.response_code,
                found_uln: got.found_uln,
                master_substituted: got.master_substituted,
                learner: got.learner.as_ref().map(LearnerView::from),
            };
            if args.json {
                return output::print_json(&view);
            }
            let mut text = format!("{} ({})", view.outcome, view.response_code);
            if view.master_substituted {
                text.push_str(&format!(": linked; master {}", view.found_uln));
            }
            text.push('\n');
            output::print(&text)?;
            match &view.learner {
                Some(learner) => show_learner(learner, false),
                None if !view.found_uln.is_empty() => {
                    output::print(&format!("uln: {}\n", view.found_uln))
                }
                None => Ok(()),
            }
        }
    }
}
