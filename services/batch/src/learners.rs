//! The learner register as the batch service reaches it: the learner service's internal RPCs
//! (`lrs.learner.v1.LearnerInternalService`), called as a service acting for the organisation
//! that uploaded the file, and the conversions of batch records into their messages.

use std::fmt;

use async_trait::async_trait;
use chrono::{Datelike, NaiveDate};
use lrs_fields::{AbilityToShare, Gender, ValidLearner};
use lrs_proto::learner::v1 as learner;
use lrs_proto::learner::v1::learner_internal_service_client::LearnerInternalServiceClient;
use lrs_proto::types::v1 as types;
use lrs_server::auth::ActingFor;
use lrs_server::client::{ServiceChannel, outbound};
use tonic::{Code, Status};

use crate::domain::record::VerificationRow;

/// Why a call to the learner service failed.
#[derive(Debug, thiserror::Error)]
pub enum LearnerCallError {
    /// The learner service is down or busy; the work is tried again later.
    #[error("the learner service is unavailable: {0}")]
    Unavailable(String),
    /// The learner service refused the request itself.
    #[error("the learner service refused the request: {0}")]
    Refused(String),
}

impl LearnerCallError {
    /// Sorts a status into passing and lasting failures.
    pub fn from_status(status: &Status) -> LearnerCallError {
        let message = format!("{:?}: {}", status.code(), status.message());
        match status.code() {
            Code::Unavailable
            | Code::DeadlineExceeded
            | Code::ResourceExhausted
            | Code::Aborted
            | Code::Cancelled
            | Code::Unknown
            | Code::Internal
            | Code::Unauthenticated => LearnerCallError::Unavailable(message),
            Code::Ok
            | Code::InvalidArgument
            | Code::NotFound
            | Code::AlreadyExists
            | Code::PermissionDenied
            | Code::FailedPrecondition
            | Code::OutOfRange
            | Code::Unimplemented
            | Code::DataLoss => LearnerCallError::Refused(message),
        }
    }
}

/// The learner register's bulk calls that batch processing needs. Each request holds at most
/// 1000 records.
#[async_trait]
pub trait LearnerRegister: Send + Sync + fmt::Debug + 'static {
    /// Matches records as a set.
    async fn match_learners(
        &self,
        request: learner::MatchLearnersRequest,
        request_id: &str,
    ) -> Result<learner::MatchLearnersResponse, LearnerCallError>;

    /// Registers learners; each registration is retry-safe by its own request id.
    async fn register_learners(
        &self,
        request: learner::RegisterLearnersRequest,
        request_id: &str,
    ) -> Result<learner::RegisterLearnersResponse, LearnerCallError>;

    /// Adds a file's optional details to learners it found.
    async fn update_learners_from_batch(
        &self,
        request: learner::UpdateLearnersFromBatchRequest,
        request_id: &str,
    ) -> Result<learner::UpdateLearnersFromBatchResponse, LearnerCallError>;

    /// Verifies ULNs against the details held.
    async fn verify_learners(
        &self,
        request: learner::VerifyLearnersRequest,
        request_id: &str,
    ) -> Result<learner::VerifyLearnersResponse, LearnerCallError>;
}

/// The learner service over gRPC, through a channel that carries the batch service's own
/// token.
#[derive(Debug, Clone)]
pub struct GrpcLearnerRegister {
    client: LearnerInternalServiceClient<ServiceChannel>,
}

impl GrpcLearnerRegister {
    /// Calls the learner service over `channel`.
    pub fn new(channel: ServiceChannel) -> GrpcLearnerRegister {
        GrpcLearnerRegister {
            client: LearnerInternalServiceClient::new(channel)
                .max_decoding_message_size(lrs_server::host::MAX_MESSAGE_SIZE)
                .max_encoding_message_size(lrs_server::host::MAX_MESSAGE_SIZE),
        }
    }
}

fn acting_for(actor: Option<&types::Actor>) -> Option<ActingFor> {
    actor.map(|actor| ActingFor {
        organisation_id: actor.organisation_id.clone(),
        user_id: Some(actor.user_id.clone()).filter(|id| !id.is_empty()),
    })
}

#[async_trait]
impl LearnerRegister for GrpcLearnerRegister {
    async fn match_learners(
        &self,
        request: learner::MatchLearnersRequest,
        request_id: &str,
    ) -> Result<learner::MatchLearnersResponse, LearnerCallError> {
        let acting = acting_for(request.acting_for.as_ref());
        let request = outbound(request, request_id, acting.as_ref());
        let response = self.client.clone().match_learners(request).await;
        response
            .map(tonic::Response::into_inner)
            .map_err(|status| LearnerCallError::from_status(&status))
    }

    async fn register_learners(
        &self,
        request: learner::RegisterLearnersRequest,
        request_id: &str,
    ) -> Result<learner::RegisterLearnersResponse, LearnerCallError> {
        let acting = acting_for(request.acting_for.as_ref());
        let request = outbound(request, request_id, acting.as_ref());
        let response = self.client.clone().register_learners(request).await;
        response
            .map(tonic::Response::into_inner)
            .map_err(|status| LearnerCallError::from_status(&status))
    }

    async fn update_learners_from_batch(
        &self,
        request: learner::UpdateLearnersFromBatchRequest,
        request_id: &str,
    ) -> Result<learner::UpdateLearnersFromBatchResponse, LearnerCallError> {
        let acting = acting_for(request.acting_for.as_ref());
        let request = outbound(request, request_id, acting.as_ref());
        let response = self
            .client
            .clone()
            .update_learners_from_batch(request)
            .await;
        response
            .map(tonic::Response::into_inner)
            .map_err(|status| LearnerCallError::from_status(&status))
    }

    async fn verify_learners(
        &self,
        request: learner::VerifyLearnersRequest,
        request_id: &str,
    ) -> Result<learner::VerifyLearnersResponse, LearnerCallError> {
        let acting = acting_for(request.acting_for.as_ref());
        let request = outbound(request, request_id, acting.as_ref());
        let response = self.client.clone().verify_learners(request).await;
        response
            .map(tonic::Response::into_inner)
            .map_err(|status| LearnerCallError::from_status(&status))
    }
}

/// A date as the contracts carry it.
pub fn proto_date(date: NaiveDate) -> types::Date {
    types::Date {
        year: date.year(),
        month: date.month() as i32,
        day: date.day() as i32,
    }
}

/// A gender as the contracts carry it.
pub fn proto_gender(gender: Gender) -> types::Gender {
    match gender {
        Gender::NotKnown => types::Gender::NotKnown,
        Gender::Male => types::Gender::Male,
        Gender::Female => types::Gender::Female,
        Gender::NotSpecified => types::Gender::NotSpecified,
    }
}

fn proto_verification_type(code: u16) -> learner::VerificationType {
    match code {
        0 => learner::VerificationType::NoneProvided,
        1 => learner::VerificationType::RelationshipWithSchool,
        2 => learner::VerificationType::Passport,
        3 => learner::VerificationType::DrivingLicence,
        4 => learner::VerificationType::IdCard,
        5 => learner::VerificationType::NationalInsuranceCard,
        6 => learner::VerificationType::CertificateOfEntitlementToFunding,
        7 => learner::VerificationType::BankCard,
        _ => learner::VerificationType::Other,
    }
}

fn proto_ability_to_share(ability: AbilityToShare) -> types::AbilityToShare {
    match ability {
        AbilityToShare::NoticeNotSeen => types::AbilityToShare::NoticeNotSeen,
        AbilityToShare::NoticeSeen => types::AbilityToShare::NoticeSeen,
        AbilityToShare::OptedOut => types::AbilityToShare::OptedOut,
    }
}

/// The register's form of a valid batch learner (without a ULN: the register allocates or
/// knows it).
pub fn proto_learner(valid: &ValidLearner) -> learner::Learner {
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    let name = |value: &Option<lrs_fields::Name>| {
        value
            .as_ref()
            .map(|n| n.as_str().to_owned())
            .unwrap_or_default()
    };
    learner::Learner {
        title: text(&valid.title),
        given_name: valid.given_name.as_str().to_owned(),
        preferred_given_name: name(&valid.preferred_given_name),
        middle_names: name(&valid.middle_other_name),
        family_name: valid.family_name.as_str().to_owned(),
        previous_family_name: name(&valid.previous_family_name),
        family_name_at_16: name(&valid.family_name_at_16),
        school_at_16: text(&valid.school_at_16),
        address_line_1: text(&valid.address_line_1),
        address_line_2: text(&valid.address_line_2),
        address_town: text(&valid.address_town),
        address_county_or_city: text(&valid.address_county_or_city),
        postcode: valid.postcode.as_str().to_owned(),
        date_of_address_capture: valid.date_of_address_capture.map(proto_date),
        date_of_birth: Some(proto_date(valid.date_of_birth)),
        place_of_birth: text(&valid.place_of_birth),
        email_address: valid
            .email
            .as_ref()
            .map(|e| e.as_str().to_owned())
            .unwrap_or_default(),
        gender: proto_gender(valid.gender) as i32,
        nationality: text(&valid.nationality),
        scottish_candidate_number: valid
            .scottish_candidate_number
            .as_ref()
            .map(|n| n.as_str().to_owned())
            .unwrap_or_default(),
        verification_type: proto_verification_type(valid.verification.verification_type.code())
            as i32,
        other_verification_description: text(&valid.verification.other_description),
        ability_to_share: proto_ability_to_share(valid.ability_to_share) as i32,
        notes: text(&valid.notes),
        upn: valid
            .upn
            .as_ref()
            .map(|u| u.as_str().to_owned())
            .unwrap_or_default(),
        uci: valid
            .uci
            .as_ref()
            .map(|u| u.as_str().to_owned())
            .unwrap_or_default(),
        ..Default::default()
    }
}

/// The demographic search of a valid batch learner: the five keys and the refiners.
pub fn proto_search(valid: &ValidLearner) -> learner::DemographicSearch {
    learner::DemographicSearch {
        given_name: valid.given_name.as_str().to_owned(),
        family_name: valid.family_name.as_str().to_owned(),
        date_of_birth: Some(proto_date(valid.date_of_birth)),
        gender: proto_gender(valid.gender) as i32,
        postcode: valid.postcode.as_str().to_owned(),
        previous_family_name: valid
            .previous_family_name
            .as_ref()
            .map(|n| n.as_str().to_owned())
            .unwrap_or_default(),
        school_at_16: valid.school_at_16.clone().unwrap_or_default(),
        place_of_birth: valid.place_of_birth.clone().unwrap_or_default(),
        email_address: valid
            .email
            .as_ref()
            .map(|e| e.as_str().to_owned())
            .unwrap_or_default(),
    }
}

/// The details of a verification row to verify.
pub fn proto_to_verify(row: &VerificationRow) -> learner::LearnerToVerify {
    learner::LearnerToVerify {
        uln: row.uln.to_string(),
        given_name: row.given_name.as_str().to_owned(),
        family_name: row.family_name.as_str().to_owned(),
        date_of_birth: row.date_of_birth.map(proto_date),
        gender: row
            .gender
            .map(proto_gender)
            .unwrap_or(types::Gender::Unspecified) as i32,
    }
}
