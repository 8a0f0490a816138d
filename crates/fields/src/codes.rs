//! The learner's coded fields: gender, verification type, ability to share and privacy notice
//! seen.
//!
//! Codes are read exactly as written (`"1"`, not `" 1"` or `"01"`).

use std::fmt;

use thiserror::Error;

use crate::text::{self, OTHER_VERIFICATION_DESCRIPTION_MAX, TextError};

/// Why a code is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodeError {
    /// Not a gender code.
    #[error("not a gender code; use 0 (not known), 1 (male), 2 (female) or 9 (not specified)")]
    Gender,
    /// Not a verification type.
    #[error("not a verification type; use 0 to 7, or 999 (other) with a description")]
    VerificationType,
    /// Verification type 999 without a description of the evidence.
    #[error("verification type 999 (other) needs a description of the evidence seen")]
    OtherVerificationDescriptionMissing,
    /// The description of other evidence is too long or holds control characters.
    #[error("the description of the evidence seen is not valid: {0}")]
    OtherVerificationDescription(TextError),
    /// Not an ability-to-share code.
    #[error(
        "not an ability-to-share code; use 0 (privacy notice not seen) or 1 (privacy notice seen)"
    )]
    AbilityToShare,
    /// Ability to share 2 (opted out) on new data.
    #[error("2 (opted out) is no longer accepted; use 0 (notice not seen) or 1 (notice seen)")]
    OptOutNoLongerAccepted,
    /// Not a privacy-notice-seen code.
    #[error("not a privacy-notice-seen code; use 0 (no) or 1 (yes)")]
    PrivacyNoticeSeen,
}

/// The learner's gender, coded as ISO/IEC 5218.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Gender {
    /// `0`: not known.
    NotKnown,
    /// `1`: male.
    Male,
    /// `2`: female.
    Female,
    /// `9`: not specified (withheld).
    NotSpecified,
}

impl Gender {
    /// Parses `0`, `1`, `2` or `9`.
    pub fn parse(code: &str) -> Result<Gender, CodeError> {
        match code {
            "0" => Ok(Gender::NotKnown),
            "1" => Ok(Gender::Male),
            "2" => Ok(Gender::Female),
            "9" => Ok(Gender::NotSpecified),
            _ => Err(CodeError::Gender),
        }
    }

    /// The numeric code.
    pub fn code(self) -> u8 {
        match self {
            Gender::NotKnown => 0,
            Gender::Male => 1,
            Gender::Female => 2,
            Gender::NotSpecified => 9,
        }
    }
}

impl fmt::Display for Gender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

/// The kind of identity evidence the registering body checked: codes 0 to 7, or 999 for other
/// evidence described in words.
///
/// What codes 0 to 7 stand for is not published, so they are kept as numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VerificationType(u16);

impl VerificationType {
    /// Verification type 999: other evidence, described in `OtherVerificationDescription`.
    pub const OTHER: VerificationType = VerificationType(999);

    /// Parses `0` to `7` or `999`.
    pub fn parse(code: &str) -> Result<VerificationType, CodeError> {
        match code {
            "0" | "1" | "2" | "3" | "4" | "5" | "6" | "7" | "999" => code
                .parse()
                .map(VerificationType)
                .map_err(|_| CodeError::VerificationType),
            _ => Err(CodeError::VerificationType),
        }
    }

    /// The numeric code.
    pub fn code(self) -> u16 {
        self.0
    }

    /// Whether this is 999, other evidence.
    pub fn is_other(self) -> bool {
        self == VerificationType::OTHER
    }
}

impl fmt::Display for VerificationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The verification type with its description: type 999 always has one; other types may carry
/// one, which is kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Verification {
    /// The kind of evidence.
    pub verification_type: VerificationType,
    /// The description of the evidence (trimmed, at most 255 characters).
    pub other_description: Option<String>,
}

impl Verification {
    /// Checks a verification type with its optional description: the description is at most
    /// 255 characters, and required (not blank) for type 999.
    pub fn new(
        verification_type: VerificationType,
        other_description: &str,
    ) -> Result<Verification, CodeError> {
        let other_description =
            text::single_line(other_description, OTHER_VERIFICATION_DESCRIPTION_MAX)
                .map_err(CodeError::OtherVerificationDescription)?;
        if verification_type.is_other() && other_description.is_none() {
            return Err(CodeError::OtherVerificationDescriptionMissing);
        }
        Ok(Verification {
            verification_type,
            other_description,
        })
    }
}

/// Whether the learner has seen the privacy notice, and (historically) whether they opted out
/// of sharing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AbilityToShare {
    /// `0`: the privacy notice has not been given to the learner.
    NoticeNotSeen,
    /// `1`: the learner has seen the privacy notice; their data may be shared.
    NoticeSeen,
    /// `2`: the learner opted out of sharing. Only held from before 2018; new data may not
    /// carry it.
    OptedOut,
}

impl AbilityToShare {
    /// Parses the code on new data (a request or a batch record): `0` or `1`. A `2` is refused
    /// with [`CodeError::OptOutNoLongerAccepted`].
    pub fn parse_new(code: &str) -> Result<AbilityToShare, CodeError> {
        match AbilityToShare::parse_stored(code) {
            Ok(AbilityToShare::OptedOut) => Err(CodeError::OptOutNoLongerAccepted),
            other => other,
        }
    }

    /// Parses a code already held in the register: `0`, `1` or the historic `2`.
    pub fn parse_stored(code: &str) -> Result<AbilityToShare, CodeError> {
        match code {
            "0" => Ok(AbilityToShare::NoticeNotSeen),
            "1" => Ok(AbilityToShare::NoticeSeen),
            "2" => Ok(AbilityToShare::OptedOut),
            _ => Err(CodeError::AbilityToShare),
        }
    }

    /// The numeric code.
    pub fn code(self) -> u8 {
        match self {
            AbilityToShare::NoticeNotSeen => 0,
            AbilityToShare::NoticeSeen => 1,
            AbilityToShare::OptedOut => 2,
        }
    }
}

impl fmt::Display for AbilityToShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

/// Batch template 3A's privacy-notice-seen flag, which took the place of ability to share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrivacyNoticeSeen {
    /// `0`: not seen.
    No,
    /// `1`: seen.
    Yes,
}

impl PrivacyNoticeSeen {
    /// Parses `0` or `1`; anything else, `2` included, is refused.
    pub fn parse(code: &str) -> Result<PrivacyNoticeSeen, CodeError> {
        match code {
            "0" => Ok(PrivacyNoticeSeen::No),
            "1" => Ok(PrivacyNoticeSeen::Yes),
            _ => Err(CodeError::PrivacyNoticeSeen),
        }
    }

    /// The numeric code.
    pub fn code(self) -> u8 {
        match self {
            PrivacyNoticeSeen::No => 0,
            PrivacyNoticeSeen::Yes => 1,
        }
    }
}

impl From<PrivacyNoticeSeen> for AbilityToShare {
    fn from(seen: PrivacyNoticeSeen) -> AbilityToShare {
        match seen {
            PrivacyNoticeSeen::No => AbilityToShare::NoticeNotSeen,
            PrivacyNoticeSeen::Yes => AbilityToShare::NoticeSeen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gender_codes() {
        for (code, gender) in [
            ("0", Gender::NotKnown),
            ("1", Gender::Male),
            ("2", Gender::Female),
            ("9", Gender::NotSpecified),
        ] {
            assert_eq!(Gender::parse(code), Ok(gender));
            assert_eq!(gender.to_string(), code);
        }
        for bad in ["3", "", " 1", "01", "M", "F", "8", "10"] {
            assert_eq!(Gender::parse(bad), Err(CodeError::Gender), "{bad:?}");
        }
    }

    #[test]
    fn verification_types() {
        for code in ["0", "1", "2", "3", "4", "5", "6", "7", "999"] {
            let parsed = VerificationType::parse(code).expect("a verification type");
            assert_eq!(parsed.to_string(), code);
        }
        assert!(VerificationType::parse("999").is_ok_and(VerificationType::is_other));
        assert!(VerificationType::parse("5").is_ok_and(|t| !t.is_other()));
        for bad in ["8", "9", "99", "998", "0999", "", " 1", "-1"] {
            assert_eq!(
                VerificationType::parse(bad),
                Err(CodeError::VerificationType),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn other_verification_needs_a_description() {
        let other = VerificationType::OTHER;
        assert_eq!(
            Verification::new(other, ""),
            Err(CodeError::OtherVerificationDescriptionMissing)
        );
        assert_eq!(
            Verification::new(other, "   "),
            Err(CodeError::OtherVerificationDescriptionMissing)
        );
        let with = Verification::new(other, "Forces ID card").expect("described");
        assert_eq!(with.other_description.as_deref(), Some("Forces ID card"));
        assert!(
            Verification::new(VerificationType(1), "").is_ok_and(|v| v.other_description.is_none())
        );
        assert!(matches!(
            Verification::new(other, &"x".repeat(256)),
            Err(CodeError::OtherVerificationDescription(
                TextError::TooLong {
                    max: 255,
                    found: 256
                }
            ))
        ));
        assert!(Verification::new(other, &"x".repeat(255)).is_ok());
    }

    #[test]
    fn ability_to_share_on_new_data_refuses_opting_out() {
        assert_eq!(
            AbilityToShare::parse_new("0"),
            Ok(AbilityToShare::NoticeNotSeen)
        );
        assert_eq!(
            AbilityToShare::parse_new("1"),
            Ok(AbilityToShare::NoticeSeen)
        );
        assert_eq!(
            AbilityToShare::parse_new("2"),
            Err(CodeError::OptOutNoLongerAccepted)
        );
        assert_eq!(
            AbilityToShare::parse_new("3"),
            Err(CodeError::AbilityToShare)
        );
        assert_eq!(
            AbilityToShare::parse_new(""),
            Err(CodeError::AbilityToShare)
        );
    }

    #[test]
    fn stored_ability_to_share_keeps_the_historic_opt_out() {
        assert_eq!(
            AbilityToShare::parse_stored("2"),
            Ok(AbilityToShare::OptedOut)
        );
        assert_eq!(AbilityToShare::OptedOut.code(), 2);
        assert_eq!(
            AbilityToShare::parse_stored("9"),
            Err(CodeError::AbilityToShare)
        );
    }

    #[test]
    fn privacy_notice_seen() {
        assert_eq!(PrivacyNoticeSeen::parse("0"), Ok(PrivacyNoticeSeen::No));
        assert_eq!(PrivacyNoticeSeen::parse("1"), Ok(PrivacyNoticeSeen::Yes));
        assert_eq!(
            PrivacyNoticeSeen::parse("2"),
            Err(CodeError::PrivacyNoticeSeen)
        );
        assert_eq!(
            PrivacyNoticeSeen::parse("Y"),
            Err(CodeError::PrivacyNoticeSeen)
        );
        assert_eq!(
            AbilityToShare::from(PrivacyNoticeSeen::Yes),
            AbilityToShare::NoticeSeen
        );
        assert_eq!(
            AbilityToShare::from(PrivacyNoticeSeen::No),
            AbilityToShare::NoticeNotSeen
        );
        assert_eq!(PrivacyNoticeSeen::Yes.code(), 1);
    }
}
