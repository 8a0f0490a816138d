//! The gRPC adapter: `lrs.learner.v1.LearnerService` ([`LearnerGrpc`]) and the internal
//! service for the suite's own services ([`internal::LearnerInternalGrpc`]).
//!
//! Each handler opens the call (authentication), takes the request apart in full, checks the
//! caller's roles, converts to domain values (every bad field collected), acts through the
//! [`Register`], and answers; errors become statuses in one place (`call.fail`). Nothing here
//! logs a learner's personal details.

mod convert;
pub mod internal;

use std::sync::Arc;

use lrs_fields::uln::{Uln, UlnError};
use lrs_proto::learner::v1 as pb;
use lrs_proto::learner::v1::learner_service_server::LearnerService;
use lrs_server::auth::Role;
use lrs_server::call::{Call, CallGate};
use lrs_server::error::FieldViolation;
use tonic::{Request, Response, Status};

use crate::domain::update::{AbilityToShareChange, AbilityToShareRefusal, ability_to_share_change};
use crate::domain::verification::{Claimed, Verdict, failure_flag};
use crate::domain::{LearnerDetails, LearnerStatus};
use crate::error::LearnerError;
use crate::register::{Actor, Lookup, Register, Verified};

/// The `ErrorInfo` domain of every learner error.
pub const ERROR_DOMAIN: &str = "learner.lrs";

/// Most ULNs in one BatchGetLearners call.
pub const MAX_BATCH_GET: usize = 200;

/// Longest merge or unmerge reason, in characters.
const MAX_REASON: usize = 500;

/// Longest request id, in characters.
const MAX_REQUEST_ID: usize = 64;

/// The handlers of `LearnerService`.
#[derive(Debug, Clone)]
pub struct LearnerGrpc {
    gate: CallGate,
    register: Arc<Register>,
}

impl LearnerGrpc {
    /// Handlers over `register`, authenticating through `gate`.
    pub fn new(gate: CallGate, register: Arc<Register>) -> Self {
        Self { gate, register }
    }
}

/// The organisation a call works for.
fn organisation(call: &Call) -> Result<&str, LearnerError> {
    call.caller
        .effective_organisation_id()
        .ok_or(LearnerError::OrganisationRequired)
}

/// Who a call is, for the audit.
fn actor(call: &Call) -> Actor {
    let subject = match &call.caller.acting_for {
        Some(acting) => match &acting.user_id {
            Some(user) => format!("{user} via {}", call.caller.subject()),
            None => call.caller.subject().to_owned(),
        },
        None => call.caller.subject().to_owned(),
    };
    Actor {
        organisation_id: call.caller.effective_organisation_id().map(str::to_owned),
        subject,
    }
}

/// Collects the results of field checks into one `INVALID_ARGUMENT`.
fn collect<T>(results: Vec<Result<T, FieldViolation>>) -> Result<Vec<T>, LearnerError> {
    let mut values = Vec::with_capacity(results.len());
    let mut violations = Vec::new();
    for result in results {
        match result {
            Ok(value) => values.push(value),
            Err(violation) => violations.push(violation),
        }
    }
    if violations.is_empty() {
        Ok(values)
    } else {
        Err(LearnerError::Invalid(violations))
    }
}

fn reason(field: &str, value: &str) -> Result<String, LearnerError> {
    let trimmed = value.trim();
    let length = trimmed.chars().count();
    if trimmed.is_empty() || length > MAX_REASON || trimmed.chars().any(char::is_control) {
        return Err(LearnerError::invalid(
            field,
            "give a reason of 1 to 500 characters on one line",
        ));
    }
    Ok(trimmed.to_owned())
}

/// A request id: empty means none; otherwise 1 to 64 printable ASCII characters.
pub(crate) fn parse_request_id(field: &str, value: &str) -> Result<Option<String>, FieldViolation> {
    if value.is_empty() {
        return Ok(None);
    }
    if value.len() > MAX_REQUEST_ID || !value.chars().all(|c| c.is_ascii_graphic()) {
        return Err(FieldViolation::new(
            field,
            "a request id is 1 to 64 printable ASCII characters (a UUID suits)",
        ));
    }
    Ok(Some(value.to_owned()))
}

/// Details to verify.
pub(crate) fn claimed(
    prefix: &str,
    learner: Option<&pb::LearnerToVerify>,
) -> Result<(Uln, Claimed), Vec<FieldViolation>> {
    let Some(learner) = learner else {
        return Err(vec![FieldViolation::new(
            prefix,
            "the learner to verify is required",
        )]);
    };
    let pb::LearnerToVerify {
        uln,
        given_name,
        family_name,
        date_of_birth,
        gender,
    } = learner;
    let uln = convert::uln(&convert::path(prefix, "uln"), uln);
    let given = convert::name(&convert::path(prefix, "given_name"), given_name);
    let family = convert::name(&convert::path(prefix, "family_name"), family_name);
    let date_of_birth = match date_of_birth {
        Some(date) => convert::parse_date(date).map(Some).ok_or_else(|| {
            FieldViolation::new(
                convert::path(prefix, "date_of_birth"),
                "not a real calendar date",
            )
        }),
        None => Ok(None),
    };
    let gender = match lrs_proto::types::v1::Gender::try_from(*gender) {
        Ok(lrs_proto::types::v1::Gender::Unspecified) => Ok(None),
        Ok(_) => Ok(convert::parse_gender(*gender)),
        Err(_) => Err(FieldViolation::new(
            convert::path(prefix, "gender"),
            "not a gender",
        )),
    };
    match (uln, given, family, date_of_birth, gender) {
        (Ok(uln), Ok(given), Ok(family), Ok(date_of_birth), Ok(gender)) => Ok((
            uln,
            Claimed {
                given_name: given.as_str().to_owned(),
                family_name: family.as_str().to_owned(),
                date_of_birth,
                gender,
            },
        )),
        (uln, given, family, date_of_birth, gender) => Err([
            uln.err(),
            given.err(),
            family.err(),
            date_of_birth.err(),
            gender.err(),
        ]
        .into_iter()
        .flatten()
        .collect()),
    }
}

/// The proto verification of one verified ULN.
pub(crate) fn verification(searched_uln: &str, verified: &Verified) -> pb::Verification {
    use pb::VerificationOutcome as O;
    let (outcome, code, keys, learner) = match verified {
        Verified::UlnNotFound => (O::UlnNotFound, "WSVRC006", Vec::new(), None),
        Verified::Checked {
            verdict,
            linked,
            learner,
        } => match (verdict, linked) {
            (Verdict::Verified, false) => (O::Verified, "WSVRC001", Vec::new(), Some(learner)),
            (Verdict::Verified, true) => (O::VerifiedLinked, "WSVRC002", Vec::new(), Some(learner)),
            (Verdict::Similar, false) => (O::Similar, "WSVRC003", Vec::new(), Some(learner)),
            (Verdict::Similar, true) => (O::SimilarLinked, "WSVRC004", Vec::new(), Some(learner)),
            (Verdict::NotMatched(keys), _) => (O::NotMatched, "WSVRC005", keys.clone(), None),
        },
    };
    let details = learner.map(|found| &found.record);
    pb::Verification {
        searched_uln: searched_uln.to_owned(),
        outcome: outcome as i32,
        response_code: code.to_owned(),
        mismatched_keys: keys.iter().copied().map(convert::key).collect(),
        failure_flags: keys.iter().map(|k| failure_flag(*k).to_owned()).collect(),
        uln: details.map(|r| r.uln.to_string()).unwrap_or_default(),
        given_name: details
            .map(|r| r.details.given_name.clone())
            .unwrap_or_default(),
        family_name: details
            .map(|r| r.details.family_name.clone())
            .unwrap_or_default(),
        date_of_birth: details.map(|r| convert::date(r.details.date_of_birth)),
        gender: details
            .map(|r| convert::gender(r.details.gender))
            .unwrap_or_default(),
    }
}

/// The demographic fields an update mask may name.
const UPDATABLE: &[&str] = &[
    "title",
    "given_name",
    "preferred_given_name",
    "middle_names",
    "family_name",
    "previous_family_name",
    "family_name_at_16",
    "school_at_16",
    "address_line_1",
    "address_line_2",
    "address_town",
    "address_county_or_city",
    "postcode",
    "date_of_address_capture",
    "date_of_birth",
    "place_of_birth",
    "email_address",
    "gender",
    "nationality",
    "scottish_candidate_number",
    "verification_type",
    "other_verification_description",
    "ability_to_share",
    "notes",
    "upn",
    "uci",
];

/// Copies the field `path` of `from` onto `onto`.
fn copy_field(path: &str, from: &pb::Learner, onto: &mut pb::Learner) {
    match path {
        "title" => onto.title = from.title.clone(),
        "given_name" => onto.given_name = from.given_name.clone(),
        "preferred_given_name" => onto.preferred_given_name = from.preferred_given_name.clone(),
        "middle_names" => onto.middle_names = from.middle_names.clone(),
        "family_name" => onto.family_name = from.family_name.clone(),
        "previous_family_name" => onto.previous_family_name = from.previous_family_name.clone(),
        "family_name_at_16" => onto.family_name_at_16 = from.family_name_at_16.clone(),
        "school_at_16" => onto.school_at_16 = from.school_at_16.clone(),
        "address_line_1" => onto.address_line_1 = from.address_line_1.clone(),
        "address_line_2" => onto.address_line_2 = from.address_line_2.clone(),
        "address_town" => onto.address_town = from.address_town.clone(),
        "address_county_or_city" => {
            onto.address_county_or_city = from.address_county_or_city.clone()
        }
        "postcode" => onto.postcode = from.postcode.clone(),
        "date_of_address_capture" => onto.date_of_address_capture = from.date_of_address_capture,
        "date_of_birth" => onto.date_of_birth = from.date_of_birth,
        "place_of_birth" => onto.place_of_birth = from.place_of_birth.clone(),
        "email_address" => onto.email_address = from.email_address.clone(),
        "gender" => onto.gender = from.gender,
        "nationality" => onto.nationality = from.nationality.clone(),
        "scottish_candidate_number" => {
            onto.scottish_candidate_number = from.scottish_candidate_number.clone()
        }
        "verification_type" => onto.verification_type = from.verification_type,
        "other_verification_description" => {
            onto.other_verification_description = from.other_verification_description.clone()
        }
        "ability_to_share" => onto.ability_to_share = from.ability_to_share,
        "notes" => onto.notes = from.notes.clone(),
        "upn" => onto.upn = from.upn.clone(),
        "uci" => onto.uci = from.uci.clone(),
        // Paths are checked against UPDATABLE before they are copied.
        _ => {}
    }
}

/// The update rule: the stored details with the masked fields of `requested` applied,
/// validated, and the ability-to-share rule applied.
fn updated_details(
    stored: &LearnerDetails,
    requested: &pb::Learner,
    paths: &[String],
    today: chrono::NaiveDate,
) -> Result<(LearnerDetails, AbilityToShareChange), LearnerError> {
    let mut merged = convert::details_to_proto(stored);
    for path in paths {
        copy_field(path, requested, &mut merged);
    }

    let requested_ability = convert::parse_ability(merged.ability_to_share);
    let valid = convert::learner_to_update("learner", &merged, stored.date_of_birth, today);
    let ability = match requested_ability {
        Some(ability) => Ok(ability),
        None => Err(FieldViolation::new(
            "learner.ability_to_share",
            "the ability to share is required: NOTICE_NOT_SEEN or NOTICE_SEEN",
        )),
    };
    let (valid, ability) = match (valid, ability) {
        (Ok(valid), Ok(ability)) => (valid, ability),
        (Err(LearnerError::Invalid(mut violations)), ability) => {
            violations.extend(ability.err());
            return Err(LearnerError::Invalid(violations));
        }
        (Err(error), _) => return Err(error),
        (Ok(_), Err(violation)) => return Err(LearnerError::Invalid(vec![violation])),
    };

    let change =
        ability_to_share_change(stored.ability_to_share, ability).map_err(
            |refusal| match refusal {
                AbilityToShareRefusal::OptOutNotAccepted => LearnerError::invalid(
                    "learner.ability_to_share",
                    "OPTED_OUT is no longer accepted, as learners cannot opt out since 2018",
                ),
                AbilityToShareRefusal::OptOutMovesOnlyToNoticeSeen => {
                    LearnerError::AbilityToShareChangeRefused
                }
            },
        )?;
    let mut details = LearnerDetails::from_valid(&valid);
    details.ability_to_share = ability;
    Ok((details, change))
}

impl LearnerGrpc {
    async fn get(
        &self,
        call: &Call,
        request: pb::GetLearnerRequest,
    ) -> Result<pb::GetLearnerResponse, LearnerError> {
        let pb::GetLearnerRequest {
            uln,
            given_name,
            family_name,
            find_type,
        } = request;
        call.caller.require_any(&[
            Role::OnlineUser,
            Role::ViewOnly,
            Role::AoUser,
            Role::Service,
        ])?;
        let uln = match (
            convert::uln("uln", &uln),
            convert::name("given_name", &given_name),
            convert::name("family_name", &family_name),
        ) {
            (Ok(uln), Ok(_), Ok(_)) => uln,
            (uln, given, family) => {
                let violations = [uln.err(), given.err(), family.err()];
                return Err(LearnerError::Invalid(
                    violations.into_iter().flatten().collect(),
                ));
            }
        };

        let lookup = self.register.get(uln, &given_name, &family_name).await?;

        let full = convert::is_full(find_type);
        Ok(match lookup {
            Lookup::NoMatch => pb::GetLearnerResponse {
                outcome: pb::MatchOutcome::NoMatch as i32,
                response_code: "WSRC0001".into(),
                ..pb::GetLearnerResponse::default()
            },
            Lookup::Found {
                learner,
                master_substituted,
            } => pb::GetLearnerResponse {
                outcome: if master_substituted {
                    pb::MatchOutcome::LinkedMaster as i32
                } else {
                    pb::MatchOutcome::ExactMatch as i32
                },
                response_code: if master_substituted {
                    "WSRC0022"
                } else {
                    "WSRC0004"
                }
                .into(),
                found_uln: learner.record.uln.to_string(),
                master_substituted,
                learner: full.then(|| convert::learner(&learner)),
            },
        })
    }

    async fn find(
        &self,
        call: &Call,
        request: pb::FindLearnersByDemographicsRequest,
    ) -> Result<pb::FindLearnersByDemographicsResponse, LearnerError> {
        let pb::FindLearnersByDemographicsRequest { search } = request;
        call.caller
            .require_any(&[Role::OnlineUser, Role::ViewOnly])?;
        let organisation = organisation(call)?;
        let today = self.register.today();
        let search =
            convert::search("search", search.as_ref(), today).map_err(LearnerError::Invalid)?;

        let answer = self.register.find(organisation, &search, true).await?;

        tracing::debug!(outcome = ?answer.decision.outcome, "searched by demographics");
        Ok(pb::FindLearnersByDemographicsResponse {
            outcome: convert::outcome(answer.decision.outcome),
            response_code: answer.decision.outcome.response_code().to_owned(),
            candidates: convert::candidates(&answer, true),
        })
    }

    async fn register(
        &self,
        call: &Call,
        request: pb::RegisterLearnerRequest,
    ) -> Result<pb::RegisterLearnerResponse, LearnerError> {
        let pb::RegisterLearnerRequest {
            learner,
            request_id,
        } = request;
        call.caller.require_any(&[Role::OnlineUser])?;
        let organisation = organisation(call)?;
        let today = self.register.today();
        let details = convert::learner_to_register("learner", learner.as_ref(), today);
        let request_id = parse_request_id("request_id", &request_id);
        let (details, request_id) = match (details, request_id) {
            (Ok(details), Ok(request_id)) => (details, request_id),
            (Err(LearnerError::Invalid(mut violations)), request_id) => {
                violations.extend(request_id.err());
                return Err(LearnerError::Invalid(violations));
            }
            (Err(error), _) => return Err(error),
            (Ok(_), Err(violation)) => return Err(LearnerError::Invalid(vec![violation])),
        };

        let found = self
            .register
            .register(organisation, details, request_id)
            .await?;

        Ok(pb::RegisterLearnerResponse {
            learner: Some(convert::learner(&found)),
            response_code: "WSRC0005".into(),
        })
    }

    async fn update(
        &self,
        call: &Call,
        request: pb::UpdateLearnerRequest,
    ) -> Result<pb::UpdateLearnerResponse, LearnerError> {
        let pb::UpdateLearnerRequest {
            learner,
            update_mask,
        } = request;
        call.caller.require_any(&[Role::OnlineUser])?;
        let Some(learner) = learner else {
            return Err(LearnerError::invalid("learner", "the learner is required"));
        };
        let uln = convert::uln("learner.uln", &learner.uln)
            .map_err(|v| LearnerError::Invalid(vec![v]))?;
        let paths: Vec<String> = match update_mask {
            Some(mask) if !mask.paths.is_empty() => mask.paths,
            _ => UPDATABLE.iter().map(|p| (*p).to_owned()).collect(),
        };
        let unknown: Vec<FieldViolation> = paths
            .iter()
            .filter(|p| !UPDATABLE.contains(&p.as_str()))
            .map(|p| {
                FieldViolation::new(
                    "update_mask",
                    format!("`{p}` is not a field that can be updated"),
                )
            })
            .collect();
        if !unknown.is_empty() {
            return Err(LearnerError::Invalid(unknown));
        }

        let today = self.register.today();
        let updated = self
            .register
            .update(&actor(call), uln, learner.version, |stored| {
                updated_details(stored, &learner, &paths, today)
            })
            .await?;

        Ok(pb::UpdateLearnerResponse {
            learner: Some(convert::learner(&updated.learner)),
            changed: updated.changed,
            response_code: if updated.changed {
                "WSRC0006"
            } else {
                "WSRC0020"
            }
            .into(),
        })
    }

    async fn verify(
        &self,
        call: &Call,
        request: pb::VerifyLearnerRequest,
    ) -> Result<pb::VerifyLearnerResponse, LearnerError> {
        let pb::VerifyLearnerRequest { learner } = request;
        call.caller.require_any(&[
            Role::AoUser,
            Role::OnlineUser,
            Role::ViewOnly,
            Role::Service,
        ])?;
        let searched = learner.as_ref().map(|l| l.uln.clone()).unwrap_or_default();
        let (uln, claimed) = claimed("learner", learner.as_ref()).map_err(LearnerError::Invalid)?;

        let verified = self.register.verify_many(&[(uln, claimed)]).await?;

        let verification = verified.first().map(|v| verification(&searched, v));
        Ok(pb::VerifyLearnerResponse { verification })
    }

    async fn batch_get(
        &self,
        call: &Call,
        request: pb::BatchGetLearnersRequest,
    ) -> Result<pb::BatchGetLearnersResponse, LearnerError> {
        let pb::BatchGetLearnersRequest { ulns } = request;
        call.caller.require_any(&[
            Role::AoUser,
            Role::OnlineUser,
            Role::ViewOnly,
            Role::Service,
        ])?;
        if ulns.is_empty() || ulns.len() > MAX_BATCH_GET {
            return Err(LearnerError::invalid("ulns", "give 1 to 200 ULNs"));
        }
        let parsed: Vec<Result<Uln, UlnError>> = ulns.iter().map(|u| Uln::parse(u)).collect();
        let valid: Vec<Uln> = parsed
            .iter()
            .filter_map(|p| p.as_ref().ok().copied())
            .collect();

        let records = self.register.learners(&valid).await?;

        use pb::RetrievedUlnStatus as S;
        let learners = ulns
            .iter()
            .zip(&parsed)
            .map(|(asked, parsed)| {
                let record = parsed.as_ref().ok().and_then(|uln| records.get(uln));
                let status = match (parsed, record) {
                    (Err(_), _) => S::Invalid,
                    (Ok(_), None) => S::NotFound,
                    (Ok(_), Some(r)) if r.status == LearnerStatus::Linked => S::Linked,
                    (Ok(_), Some(_)) => S::Active,
                };
                pb::RetrievedLearner {
                    uln: asked.clone(),
                    status: status as i32,
                    master_uln: record
                        .and_then(|r| r.master_uln)
                        .map(|u| u.to_string())
                        .unwrap_or_default(),
                    given_name: record
                        .map(|r| r.details.given_name.clone())
                        .unwrap_or_default(),
                    family_name: record
                        .map(|r| r.details.family_name.clone())
                        .unwrap_or_default(),
                    date_of_birth: record.map(|r| convert::date(r.details.date_of_birth)),
                    gender: record
                        .map(|r| convert::gender(r.details.gender))
                        .unwrap_or_default(),
                }
            })
            .collect();
        Ok(pb::BatchGetLearnersResponse { learners })
    }

    async fn merge(
        &self,
        call: &Call,
        request: pb::MergeLearnersRequest,
    ) -> Result<pb::MergeLearnersResponse, LearnerError> {
        let pb::MergeLearnersRequest {
            master_uln,
            duplicate_uln,
            reason: why,
        } = request;
        call.caller.require_any(&[])?;
        let ulns = collect(vec![
            convert::uln("master_uln", &master_uln),
            convert::uln("duplicate_uln", &duplicate_uln),
        ])?;
        let why = reason("reason", &why)?;

        let (master, duplicate) = self
            .register
            .merge(&actor(call), ulns[0], ulns[1], &why)
            .await?;

        Ok(pb::MergeLearnersResponse {
            master: Some(convert::learner(&master)),
            duplicate: Some(convert::learner(&duplicate)),
        })
    }

    async fn unmerge(
        &self,
        call: &Call,
        request: pb::UnmergeLearnersRequest,
    ) -> Result<pb::UnmergeLearnersResponse, LearnerError> {
        let pb::UnmergeLearnersRequest {
            linked_uln,
            reason: why,
        } = request;
        call.caller.require_any(&[])?;
        let linked =
            convert::uln("linked_uln", &linked_uln).map_err(|v| LearnerError::Invalid(vec![v]))?;
        let why = reason("reason", &why)?;

        let (learner, former_master) = self.register.unmerge(&actor(call), linked, &why).await?;

        Ok(pb::UnmergeLearnersResponse {
            learner: Some(convert::learner(&learner)),
            former_master: Some(convert::learner(&former_master)),
        })
    }
}

/// Why a ULN string is not valid, as the proto names it.
fn uln_fault(error: &UlnError) -> pb::UlnFault {
    match error {
        UlnError::Empty | UlnError::WrongLength { .. } => pb::UlnFault::WrongLength,
        UlnError::NotADigit { .. } => pb::UlnFault::NotDigits,
        UlnError::LeadingZero => pb::UlnFault::LeadingZero,
        UlnError::Placeholder | UlnError::NoCheckDigit | UlnError::CheckDigit { .. } => {
            pb::UlnFault::CheckDigit
        }
    }
}

#[tonic::async_trait]
impl LearnerService for LearnerGrpc {
    async fn validate_uln(
        &self,
        request: Request<pb::ValidateUlnRequest>,
    ) -> Result<Response<pb::ValidateUlnResponse>, Status> {
        self.gate.enter(&request).await?;
        let pb::ValidateUlnRequest { uln } = request.into_inner();

        let fault = Uln::parse(&uln).err().map(|e| uln_fault(&e));

        Ok(Response::new(pb::ValidateUlnResponse {
            valid: fault.is_none(),
            fault: fault.unwrap_or(pb::UlnFault::Unspecified) as i32,
        }))
    }

    async fn get_learner(
        &self,
        request: Request<pb::GetLearnerRequest>,
    ) -> Result<Response<pb::GetLearnerResponse>, Status> {
        let call = self.gate.enter(&request).await?;
        let answer = self.get(&call, request.into_inner()).await;
        answer.map(Response::new).map_err(|e| call.fail(e))
    }

    async fn find_learners_by_demographics(
        &self,
        request: Request<pb::FindLearnersByDemographicsRequest>,
    ) -> Result<Response<pb::FindLearnersByDemographicsResponse>, Status> {
        let call = self.gate.enter(&request).await?;
        let answer = self.find(&call, request.into_inner()).await;
        answer.map(Response::new).map_err(|e| call.fail(e))
    }

    async fn register_learner(
        &self,
        request: Request<pb::RegisterLearnerRequest>,
    ) -> Result<Response<pb::RegisterLearnerResponse>, Status> {
        let call = self.gate.enter(&request).await?;
        let answer = self.register(&call, request.into_inner()).await;
        answer.map(Response::new).map_err(|e| call.fail(e))
    }

    async fn update_learner(
        &self,
        request: Request<pb::UpdateLearnerRequest>,
    ) -> Result<Response<pb::UpdateLearnerResponse>, Status> {
        let call = self.gate.enter(&request).await?;
        let answer = self.update(&call, request.into_inner()).await;
        answer.map(Response::new).map_err(|e| call.fail(e))
    }

    async fn verify_learner(
        &self,
        request: Request<pb::VerifyLearnerRequest>,
    ) -> Result<Response<pb::VerifyLearnerResponse>, Status> {
        let call = self.gate.enter(&request).await?;
        let answer = self.verify(&call, request.into_inner()).await;
        answer.map(Response::new).map_err(|e| call.fail(e))
    }

    async fn batch_get_learners(
        &self,
        request: Request<pb::BatchGetLearnersRequest>,
    ) -> Result<Response<pb::BatchGetLearnersResponse>, Status> {
        let call = self.gate.enter(&request).await?;
        let answer = self.batch_get(&call, request.into_inner()).await;
        answer.map(Response::new).map_err(|e| call.fail(e))
    }

    async fn merge_learners(
        &self,
        request: Request<pb::MergeLearnersRequest>,
    ) -> Result<Response<pb::MergeLearnersResponse>, Status> {
        let call = self.gate.enter(&request).await?;
        let answer = self.merge(&call, request.into_inner()).await;
        answer.map(Response::new).map_err(|e| call.fail(e))
    }

    async fn unmerge_learners(
        &self,
        request: Request<pb::UnmergeLearnersRequest>,
    ) -> Result<Response<pb::UnmergeLearnersResponse>, Status> {
        let call = self.gate.enter(&request).await?;
        let answer = self.unmerge(&call, request.into_inner()).await;
        answer.map(Response::new).map_err(|e| call.fail(e))
    }
}
